// TF Serving's classify and regress methods over images:
//   POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify  → {"result": [[["label", score], ...], ...]}
//   POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress   → {"result": [value, ...]}
// The body is one image (Content-Type image/jpeg or image/png) or TF Serving's JSON request
// {"examples": [{"<input>": {"b64": "<image bytes>"}}], "top_k"?: n}; top_k also as ?top_k=n.
// Each image is decoded (shared/image/), resized and scaled as the version's edgeflow.json
// `image` says, and run through the model in one batch.
import type { Context } from 'hono';
import { endTime, setMetric, startTime } from 'hono/timing';
import { decodeBase64, isB64Value } from '../../shared/codecs.ts';
import { badRequest, describeZodError } from '../../shared/errors.ts';
import { unsupportedImage } from '../../shared/image/header.ts';
import { imageToInput } from '../../shared/image/to-input.ts';
import type { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { TfServingClassifyRequest } from '../../shared/schemas/requests.ts';
import type { AppEnv } from '../app-env.ts';
import { mediaType, parseJsonBody, readCappedBody, timed } from '../body.ts';
import { runModel, type OutputTensor } from '../inference.ts';
import { checkBatch, ElementBudget, type Limits } from '../limits.ts';
import type { VersionSelector } from '../runtime/registry.ts';

/** Most classes a classify answer lists per example. */
export const MAX_TOP_K = 1000;

const IMAGE_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/png']);

interface ImageRequest {
  /** The image bytes of each example, with the field naming it in messages. */
  images: { bytes: Uint8Array; field: string }[];
  topK: number | undefined;
}

function parseTopK(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw badRequest(`top_k: expected a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/** The single {"b64": ...} feature of an example (under the input's name when there are several). */
function exampleImage(example: Record<string, unknown>, i: number, inputName: string): { bytes: Uint8Array; field: string } {
  const keys = Object.keys(example);
  const key = keys.length === 1 ? keys[0]! : keys.includes(inputName) ? inputName : undefined;
  if (key === undefined) throw badRequest(`examples[${i}]: expected one feature, the image under ${JSON.stringify(inputName)}, got ${keys.length === 0 ? 'none' : keys.join(', ')}`);
  const field = `examples[${i}].${key}`;
  const value = example[key];
  if (!isB64Value(value)) throw badRequest(`${field}: expected {"b64": "<JPEG or PNG bytes, base64>"}`);
  return { bytes: decodeBase64(value.b64, `${field}.b64`), field: `${field}.b64` };
}

/** Reads the body as one image or a JSON classify request; 415 for any other content type. */
async function readImageRequest(c: Context<AppEnv>, limits: Limits, inputName: () => string): Promise<ImageRequest> {
  const type = mediaType(c);
  const queryTopK = parseTopK(c.req.query('top_k'));
  if (type !== '' && type !== 'application/json' && !IMAGE_TYPES.has(type)) {
    throw unsupportedImage(`Content-Type ${type}: send image/jpeg, image/png, or application/json with {"examples": [{"<input>": {"b64": ...}}]}`);
  }
  const bytes = await timed(c, 'read', () => readCappedBody(c, limits.maxBodyBytes));
  return timed(c, 'parse', () => {
    if (IMAGE_TYPES.has(type) || (type === '' && bytes[0] !== 0x7b)) {
      if (bytes.byteLength === 0) throw badRequest('body: an image is required');
      return { images: [{ bytes, field: 'body' }], topK: queryTopK };
    }
    const parsed = TfServingClassifyRequest.safeParse(parseJsonBody(bytes));
    if (!parsed.success) throw badRequest(describeZodError(parsed.error));
    const { examples, top_k, signature_name } = parsed.data;
    if (signature_name !== undefined && signature_name !== '' && signature_name !== 'serving_default') {
      throw badRequest(`signature_name: unknown signature ${JSON.stringify(signature_name)} (the model has serving_default)`);
    }
    checkBatch(examples.length, 'examples', limits);
    return { images: examples.map((example, i) => exampleImage(example, i, inputName())), topK: top_k ?? queryTopK };
  });
}

/** The version's image spec, or a 400 saying how to give one. */
function imageSpec(name: string, edgeflow: EdgeflowJson): NonNullable<EdgeflowJson['image']> {
  if (!edgeflow.image) throw badRequest(`model ${name} has no image spec: convert it with --image HxW`);
  return edgeflow.image;
}

/** The single output, [batch, classes] for classify, [batch] or [batch, 1] for regress. */
function singleOutput(name: string, outputs: OutputTensor[], method: 'classify' | 'regress'): OutputTensor {
  if (outputs.length !== 1) throw badRequest(`${method}: model ${name} has ${outputs.length} outputs; ${method} needs a single one`);
  const output = outputs[0]!;
  const fits = method === 'classify' ? output.shape.length === 2 : output.shape.length === 1 || (output.shape.length === 2 && output.shape[1] === 1);
  if (!fits) throw badRequest(`${method}: output ${output.name} has shape [${output.shape.join(', ')}]; ${method} needs ${method === 'classify' ? '[batch, classes]' : '[batch] or [batch, 1]'}`);
  return output;
}

/** Scores sorted, top k; a one-unit output with two labels is binary: p for the second, 1 - p for the first. */
function classifyResult(output: OutputTensor, labels: string[] | undefined, topK: number): [string, number][][] {
  const [batch, classes] = output.shape as [number, number];
  const binary = classes === 1 && labels?.length === 2;
  return Array.from({ length: batch }, (_, b) => {
    const p = Number(output.values[b * classes]);
    const scored = binary
      ? [[labels[1]!, p] as [string, number], [labels[0]!, 1 - p] as [string, number]]
      : Array.from({ length: classes }, (_, k) => [labels?.[k] ?? String(k), Number(output.values[b * classes + k])] as [string, number]);
    return scored.sort((x, y) => y[1] - x[1]).slice(0, topK);
  });
}

/** Answers `:classify` or `:regress` for the model `name` at `selector`. */
export async function classifyOrRegress(c: Context<AppEnv>, name: string, selector: VersionSelector, method: 'classify' | 'regress'): Promise<Response> {
  const runtime = c.get('runtime');
  const limits = c.get('limits');
  let inputName = 'image';
  const [request, acquired] = await runtime.acquireWhile(name, selector, () => readImageRequest(c, limits, () => inputName));
  try {
    setMetric(c, 'load', acquired.loadMs, undefined, 2);
    startTime(c, 'decode');
    const model = acquired.entry.model;
    const spec = imageSpec(name, acquired.resolved.edgeflow);
    const [input] = model.inputs;
    if (!input || model.inputs.length !== 1) throw badRequest(`${method}: model ${name} has ${model.inputs.length} inputs; an image request needs a single one`);
    inputName = input.name;
    const depth = spec.channels === 'grayscale' ? 1 : 3;
    const perImage = spec.height * spec.width * depth;
    new ElementBudget(limits).take(perImage * request.images.length, 'examples');
    const values = input.dtype === 'int32' ? new Int32Array(perImage * request.images.length) : new Float32Array(perImage * request.images.length);
    // The image decoders (jpeg-js, fast-png) load with the first image: a server that never
    // gets one does not pay their import at start-up (80-90 ms on 2 cores).
    const { decodeImage } = await import('../../shared/image/decode.ts');
    request.images.forEach(({ bytes, field }, i) => imageToInput(decodeImage(bytes, field, limits.maxImagePixels), spec, values, i * perImage));
    endTime(c, 'decode', 2);
    startTime(c, 'infer');
    const outputs = await runModel(model, [{ shape: [request.images.length, spec.height, spec.width, depth], dtype: input.dtype === 'int32' ? 'int32' : 'float32', values }]);
    endTime(c, 'infer', 2);
    startTime(c, 'encode');
    const output = singleOutput(name, outputs, method);
    const result = method === 'classify' ? classifyResult(output, acquired.resolved.edgeflow.labels, Math.min(request.topK ?? MAX_TOP_K, MAX_TOP_K)) : Array.from(output.values, Number);
    const text = JSON.stringify({ result });
    endTime(c, 'encode', 2);
    return c.body(text, 200, { 'Content-Type': 'application/json' });
  } finally {
    acquired.release();
  }
}
