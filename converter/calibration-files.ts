// Calibration inputs from files: one JSON or .npy file (converter/calibration.ts), or PNG / JPEG
// images decoded and preprocessed by the model's image spec with the shared/image code `:classify`
// runs (one preprocessing path); and the calibration files a model's files carry
// (shared/bucket/calibration.ts says where) set apart from them.
import { EdgeflowError, isEdgeflowError } from '../shared/errors.ts';
import { decodeImage } from '../shared/image/decode.ts';
import { imageToInput } from '../shared/image/to-input.ts';
import type { ImageInput, TensorSignature } from '../shared/schemas/edgeflow-json.ts';
import { fixedBatch, isIntegerDtype, parseCalibrationJson, parseNpy, splitSamples, type Calibration } from './calibration.ts';
import type { FileSet } from './model.ts';
import { checkCalibrationFiles, isCalibrationPath } from '../shared/bucket/calibration.ts';

/** A calibration file: its path (for messages and its kind, by extension) and bytes. */
export interface CalibrationFile {
  path: string;
  bytes: Uint8Array;
}

/** Images used at most (the first by path): each runs through every trial conversion, and 32 224x224 RGB inputs are 19 MB of float32. */
export const MAX_CALIBRATION_IMAGES = 32;
/** Largest calibration image, in pixels (checked from its header, before decoding): a 12 MP photo decodes to 36 MB of RGB, a Worker has 128 MB. */
export const MAX_CALIBRATION_IMAGE_PIXELS = 12_000_000;

const refuse = (message: string) => new EdgeflowError('bad_request', message);

/** Removes the calibration files from a model's files and returns them (sorted by path). */
export function takeCalibrationFiles(files: FileSet): CalibrationFile[] {
  const taken = [...files.keys()]
    .filter(isCalibrationPath)
    .sort()
    .map((path) => ({ path, bytes: files.get(path)! }));
  for (const { path } of taken) files.delete(path);
  return taken;
}

/** The images as one batch through `spec`, split to the model's fixed batch size. */
function imageCalibration(files: CalibrationFile[], inputs: TensorSignature[], spec: ImageInput | undefined): Calibration {
  const input = inputs[0]!;
  if (!spec) {
    throw refuse(
      `calibration images need a model with one image input [batch, height, width, 1|3]; this model takes ${inputs.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ')}: give --image <H>x<W>,... or a .json / .npy calibration file`,
    );
  }
  const used = files.slice(0, Math.max(MAX_CALIBRATION_IMAGES, fixedBatch(inputs) ?? 1));
  const depth = spec.channels === 'grayscale' ? 1 : 3;
  const perImage = spec.height * spec.width * depth;
  const integer = isIntegerDtype(input.dtype);
  const values = integer ? new Int32Array(used.length * perImage) : new Float32Array(used.length * perImage);
  used.forEach(({ path, bytes }, i) => {
    try {
      imageToInput(decodeImage(bytes, `calibration image ${path}`, MAX_CALIBRATION_IMAGE_PIXELS), spec, values, i * perImage);
    } catch (error) {
      // 415 / 413 / 400 of a request are all the calibration's problem here: bad_request, named.
      if (isEdgeflowError(error)) throw refuse(error.message);
      throw error;
    }
  });
  const source = `${used.length} calibration image${used.length === 1 ? '' : 's'}`;
  const batch = [{ shape: [used.length, spec.height, spec.width, depth], dtype: integer ? ('int32' as const) : ('float32' as const), values }];
  const skipped = files.length - used.length;
  return {
    description: `${source} (${spec.height}x${spec.width} ${spec.channels}, pixel*${spec.scale}+${spec.offset})${skipped > 0 ? `, the first ${used.length} of ${files.length} by name` : ''}`,
    kind: 'data',
    ...splitSamples(batch, inputs, source),
  };
}

/**
 * Calibration inputs from files: one JSON or .npy file, or PNG / JPEG images (through `image`,
 * the model's image spec). bad_request naming the file for anything unreadable.
 */
export function calibrationFromFiles(files: CalibrationFile[], inputs: TensorSignature[], image: ImageInput | undefined): Calibration {
  checkCalibrationFiles(files.map((f) => f.path));
  if (files.length === 0) throw refuse('calibration: no files');
  const [first] = files;
  if (/\.npy$/i.test(first!.path)) return parseNpy(first!.bytes, inputs, first!.path);
  if (/\.json$/i.test(first!.path)) return parseCalibrationJson(new TextDecoder().decode(first!.bytes), inputs, first!.path);
  return imageCalibration(files, inputs, image);
}
