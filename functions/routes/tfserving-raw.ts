// A raw tensor body for TF Serving `:predict` (edgeflow's own, beside the JSON formats): with
// `Content-Type: application/octet-stream` the body is the model's one input, row-major
// little-endian elements without padding, answered as `{"predictions": [...]}`.
// - `?dtype=` the element type: float32 (default), int32 or uint8 (an image's pixels at a
//   quarter of the bytes); values are range-checked and converted to the input's dtype.
// - the shape is the signature's, its batch (first dimension) read from the byte count; or
//   `?shape=2,224,224,3` to give it whole (needed when the signature leaves an inner dimension
//   unknown), checked against the signature and the byte count.
// Every mismatch is a 400 naming the numbers.
import { asTensorDtype, checkShape, elementCount } from '../../shared/codecs.ts';
import { badRequest } from '../../shared/errors.ts';
import type { TensorSignature } from '../../shared/schemas/edgeflow-json.ts';
import { binaryWidth, decodeTensorBytes } from '../../shared/tensor-bytes.ts';
import type { InputTensor } from '../inference.ts';
import { checkBatch, ElementBudget, type Limits } from '../limits.ts';

export const RAW_TENSOR_TYPE = 'application/octet-stream';

/** `?dtype=` values and the datatype of their bytes. */
const RAW_DTYPES = { float32: 'FP32', int32: 'INT32', uint8: 'UINT8' } as const;
type RawDtype = keyof typeof RAW_DTYPES;

/** Longest `?shape=` read: rank 8, each dimension a few digits. */
const MAX_SHAPE_CHARS = 100;

function parseShape(text: string): number[] {
  if (text.length > MAX_SHAPE_CHARS || !/^\d+(,\d+)*$/.test(text))
    throw badRequest(`shape: expected comma-separated dimensions like 1,224,224,3, got ${JSON.stringify(text.slice(0, MAX_SHAPE_CHARS))}`);
  return text.split(',').map(Number);
}

/** The shape the bytes fill: `?shape=` when given, else the signature's with the batch the byte count gives. */
function rawShape(bytes: number, signature: TensorSignature, dtype: RawDtype, width: number, shapeQuery: string | undefined): number[] {
  if (shapeQuery !== undefined) return parseShape(shapeQuery);
  const inner = signature.shape.slice(1);
  if (signature.shape.length === 0 || inner.some((d) => d < 0)) {
    throw badRequest(`shape: input ${signature.name} is [${signature.shape.map((d) => (d < 0 ? 'any' : d)).join(', ')}]; give the whole shape as ?shape=`);
  }
  const instance = elementCount(inner) * width;
  if (bytes % instance !== 0) {
    throw badRequest(`body: ${bytes} bytes are not a whole number of instances of ${signature.name}: each is [${inner.join(', ')}] ${dtype}, ${instance} bytes`);
  }
  return [bytes / instance, ...inner];
}

/** The model's one input from a raw body; query reads `dtype` and `shape`. */
export function decodeRawPredict(bytes: Uint8Array, query: (key: string) => string | undefined, signature: TensorSignature[], limits: Limits): InputTensor[] {
  const [input] = signature;
  if (!input || signature.length !== 1) {
    throw badRequest(`body: a raw ${RAW_TENSOR_TYPE} body is one input; the model has ${signature.length} (${signature.map((s) => s.name).join(', ')}): send JSON`);
  }
  const dtype = asTensorDtype(input.dtype);
  if (dtype === 'string') throw badRequest(`body: input ${input.name} takes strings: send JSON`);
  const dtypeText = query('dtype') ?? 'float32';
  if (!Object.hasOwn(RAW_DTYPES, dtypeText)) throw badRequest(`dtype: ${JSON.stringify(dtypeText.slice(0, 40))} is not one of ${Object.keys(RAW_DTYPES).join(', ')}`);
  const datatype = RAW_DTYPES[dtypeText as RawDtype];
  if (bytes.byteLength === 0) throw badRequest(`body: empty; a raw ${RAW_TENSOR_TYPE} body holds the input's ${dtypeText} values, little-endian`);
  const width = binaryWidth(datatype, 'dtype');
  const shape = rawShape(bytes.byteLength, input, dtypeText as RawDtype, width, query('shape'));
  checkShape(shape, input.shape, 'shape');
  checkBatch(shape[0]!, 'shape', limits);
  const count = elementCount(shape);
  new ElementBudget(limits).take(count, 'shape');
  if (bytes.byteLength !== count * width) throw badRequest(`body: ${bytes.byteLength} bytes, but shape [${shape.join(', ')}] of ${dtypeText} is ${count * width} bytes`);
  return [{ shape, dtype, values: decodeTensorBytes(bytes, datatype, dtype, 'body') }];
}
