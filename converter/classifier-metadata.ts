// What `:classify` needs from a conversion, checked against the model's signature: the class
// labels (count = the single output's last dimension, or two for a one-unit binary output:
// negative, then positive) and the image spec (given, or inferred from
// a single [-1, H, W, 1|3] input: channels from the last dimension, pixels as they are).
// Labels and image in model.json's userDefinedMetadata (`edgeflow train` writes them) count as
// given unless the options give their own.
import { badRequest } from '../shared/errors.ts';
import { ConversionOptions } from '../shared/options/conversion.ts';
import type { ImageOption } from '../shared/options/image-spec.ts';
import type { DecodedModel } from './model.ts';
import type { ImageInput, TensorSignature } from '../shared/schemas/edgeflow-json.ts';

export interface ClassifierMetadata {
  labels?: string[];
  image?: ImageInput;
  /** What was inferred, for the progress line. */
  inferred?: string;
}

const CHANNELS = { 1: 'grayscale', 3: 'rgb' } as const;

function checkLabels(labels: string[], outputs: TensorSignature[]): void {
  if (outputs.length !== 1) throw badRequest(`--labels: the model has ${outputs.length} outputs (${outputs.map((o) => o.name).join(', ')}); labels name the classes of a single output`);
  const output = outputs[0]!;
  const classes = output.shape.at(-1);
  if (classes === undefined || output.shape.length < 2) throw badRequest(`--labels: output ${output.name} has shape [${output.shape.join(', ')}], not [batch, classes]`);
  if (classes !== -1 && classes !== labels.length && !(classes === 1 && labels.length === 2)) {
    throw badRequest(
      `--labels: ${labels.length} class names given, but output ${output.name} has ${classes} classes (its last dimension${classes === 1 ? '; a one-unit binary output takes 2 names, negative then positive' : ''})`,
    );
  }
}

function checkImage(option: ImageOption, input: TensorSignature | undefined, inputs: number): ImageInput {
  if (!input || inputs !== 1) throw badRequest(`--image: the model has ${inputs} inputs; an image spec needs a single [batch, height, width, channels] input`);
  const { shape } = input;
  if (shape.length !== 4) throw badRequest(`--image: input ${input.name} has shape [${shape.join(', ')}], not [batch, height, width, channels]`);
  const [, height, width, depth] = shape as [number, number, number, number];
  if ((height !== -1 && height !== option.height) || (width !== -1 && width !== option.width)) {
    throw badRequest(`--image ${option.height}x${option.width} does not fit input ${input.name}, which takes ${height}x${width} images`);
  }
  const fromModel = CHANNELS[depth as 1 | 3];
  if (!fromModel) throw badRequest(`--image: input ${input.name} has ${depth} channels; images have 1 (grayscale) or 3 (rgb)`);
  if (option.channels && option.channels !== fromModel) throw badRequest(`--image channels=${option.channels} does not fit input ${input.name}, which takes ${depth}-channel (${fromModel}) images`);
  return { height: option.height, width: option.width, channels: fromModel, scale: option.scale ?? 1, offset: option.offset ?? 0 };
}

/** Labels and image checked against the signature (bad_request naming both sides), or the image inferred. */
export function classifierMetadata(signature: { inputs: TensorSignature[]; outputs: TensorSignature[] }, given: { labels?: string[]; image?: ImageOption }): ClassifierMetadata {
  if (given.labels) checkLabels(given.labels, signature.outputs);
  const metadata: ClassifierMetadata = given.labels ? { labels: given.labels } : {};
  if (given.image) return { ...metadata, image: checkImage(given.image, signature.inputs[0], signature.inputs.length) };
  // :classify infers the image spec of a free-batch input only (calibration images take any batch: imageSpecFor).
  const image = signature.inputs[0]?.shape[0] === -1 ? inferredImage(signature.inputs) : undefined;
  if (!image) return metadata;
  return {
    ...metadata,
    image,
    inferred: `image input ${image.height}x${image.width} ${image.channels}, pixels 0..255 as they are (give --image ...,scale=,offset= if the model expects another range)`,
  };
}

/** The image spec of a single [batch, H, W, 1|3] input, pixels as they are; undefined for any other signature. */
function inferredImage(inputs: TensorSignature[]): ImageInput | undefined {
  const [height, width, depth] = inputs[0]?.shape.slice(1) ?? [];
  if (inputs.length !== 1 || inputs[0]!.shape.length !== 4 || !(height! > 0) || !(width! > 0) || !CHANNELS[depth as 1 | 3]) return undefined;
  return { height: height!, width: width!, channels: CHANNELS[depth as 1 | 3], scale: 1, offset: 0 };
}

/** Labels and image from model.json's userDefinedMetadata, where they are well-formed. */
export function trainedClassifier(model: DecodedModel): { labels?: string[]; image?: ImageOption } {
  const metadata = model.modelJson.userDefinedMetadata as Record<string, unknown> | undefined;
  const labels = ConversionOptions.shape.labels.safeParse(metadata?.labels);
  const image = ConversionOptions.shape.image.safeParse(metadata?.image);
  return { ...(labels.success && labels.data ? { labels: labels.data } : {}), ...(image.success && image.data ? { image: image.data } : {}) };
}

/**
 * The image spec calibration images go through: the given one (checked against the input), else
 * one inferred from a single [batch, H, W, 1|3] input, whatever its batch (pixels as they are);
 * undefined when the model has no such input.
 */
export function imageSpecFor(inputs: TensorSignature[], given: ImageOption | undefined): ImageInput | undefined {
  return given ? checkImage(given, inputs[0], inputs.length) : inferredImage(inputs);
}
