// Binary tensor data: raw little-endian, row-major bytes (no stride or padding) of a v2 datatype
// to the typed array of a model's dtype, range-checked as JSON values are (shared/codecs.ts),
// and a tensor's values back to bytes. Used by the KServe v2 binary tensor extension and the raw
// octet-stream body of TF Serving :predict. BYTES (length-prefixed strings) is not taken.
import { allocate, CodecError, numberReader, type TensorDtype, type TypedValues, type V2Datatype } from './codecs.ts';

/** Whether typed arrays here are little-endian (every host edgeflow runs on); the byte copies below rely on it. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const fraction = half & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

type Getter = (view: DataView, offset: number) => number;
type BinaryDatatype = Exclude<V2Datatype, 'BYTES'>;

/** Bytes per element and a little-endian reader of each binary datatype. */
const ELEMENTS: Record<BinaryDatatype, [number, Getter]> = {
  BOOL: [1, (v, o) => v.getUint8(o)],
  UINT8: [1, (v, o) => v.getUint8(o)],
  INT8: [1, (v, o) => v.getInt8(o)],
  UINT16: [2, (v, o) => v.getUint16(o, true)],
  INT16: [2, (v, o) => v.getInt16(o, true)],
  FP16: [2, (v, o) => halfToFloat(v.getUint16(o, true))],
  UINT32: [4, (v, o) => v.getUint32(o, true)],
  INT32: [4, (v, o) => v.getInt32(o, true)],
  FP32: [4, (v, o) => v.getFloat32(o, true)],
  UINT64: [8, (v, o) => Number(v.getBigUint64(o, true))],
  INT64: [8, (v, o) => Number(v.getBigInt64(o, true))],
  FP64: [8, (v, o) => v.getFloat64(o, true)],
};

/** Bytes per element of a datatype sent as binary data; BYTES is refused by name. */
export function binaryWidth(datatype: V2Datatype, field: string): number {
  if (datatype === 'BYTES') throw new CodecError(field, 'BYTES tensors are not taken as binary data here: send them as JSON data (strings or {"b64": ...})');
  return ELEMENTS[datatype][0];
}

/** The values of `bytes` (whole elements of `datatype`) as the model's dtype; every element checked as a JSON value would be. */
export function decodeTensorBytes(bytes: Uint8Array, datatype: V2Datatype, dtype: TensorDtype, field: string): TypedValues {
  const width = binaryWidth(datatype, field);
  if (dtype === 'string') throw new CodecError(field, `binary ${datatype} data does not fit a string input`);
  if (bytes.byteLength % width !== 0) throw new CodecError(field, `${bytes.byteLength} bytes are not a whole number of ${datatype} elements (${width} bytes each)`);
  const count = bytes.byteLength / width;
  const out = allocate(dtype, count);
  const read = numberReader(dtype, datatype);
  const at = (i: number) => () => `${field}[${i}]`;
  if (LITTLE_ENDIAN && width === 4 && ((datatype === 'FP32' && dtype === 'float32') || (datatype === 'INT32' && dtype === 'int32'))) {
    new Uint8Array(out.buffer).set(bytes);
    // A float32 is within range once finite; NaN and ±Infinity get the JSON path's message.
    if (dtype === 'float32') for (let i = 0; i < count; i++) if (!Number.isFinite(out[i]!)) read(out[i], at(i));
    return out;
  }
  if (datatype === 'UINT8' && dtype !== 'bool') {
    out.set(bytes);
    return out;
  }
  const get = ELEMENTS[datatype as BinaryDatatype][1];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) out[i] = read(get(view, i * width), at(i));
  return out;
}

/** A tensor's values as little-endian bytes (a view of them where the host is little-endian). */
export function tensorBytes(values: TypedValues): Uint8Array {
  if (LITTLE_ENDIAN || values instanceof Uint8Array) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (values instanceof Float32Array) view.setFloat32(i * 4, values[i]!, true);
    else view.setInt32(i * 4, values[i]!, true);
  }
  return out;
}
