// Tensor codecs for the HTTP APIs: JSON values (nested or flat lists, {"b64": ...} bytes)
// to typed arrays of a model's input dtype and back, with the KServe v2 datatypes.
// Every error names the request field it is about (e.g. `inputs[0].data[12]`).
import { EdgeflowError } from './errors.ts';

/** The dtypes TF.js models take and give. */
export type TensorDtype = 'float32' | 'int32' | 'bool' | 'string';
export type TypedValues = Float32Array | Int32Array | Uint8Array;
/** Decoded tensor values: typed arrays for numbers, a byte string per element for 'string'. */
export type TensorValues = TypedValues | Uint8Array[];

export const V2_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type V2Datatype = (typeof V2_DATATYPES)[number];

/** A request value that cannot be decoded; field is a path like `instances[2]`. */
export class CodecError extends EdgeflowError {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super('bad_request', `${field}: ${problem}`);
    this.name = 'CodecError';
  }
}

export function asTensorDtype(dtype: string): TensorDtype {
  return dtype === 'int32' || dtype === 'bool' || dtype === 'string' ? dtype : 'float32';
}

/** The v2 datatype a model dtype is reported as. */
export function v2Datatype(dtype: string): V2Datatype {
  switch (dtype) {
    case 'int32':
      return 'INT32';
    case 'bool':
      return 'BOOL';
    case 'string':
      return 'BYTES';
    default:
      return 'FP32';
  }
}

/** The TF Serving (TensorFlow DataType) name of a model dtype. */
export function tfServingDtype(dtype: string): string {
  return { int32: 'DT_INT32', bool: 'DT_BOOL', string: 'DT_STRING', float32: 'DT_FLOAT' }[dtype] ?? 'DT_FLOAT';
}

/** Integer ranges of the v2 integer datatypes (64-bit ones limited to exact JSON numbers). */
const INTEGER_RANGES: Partial<Record<V2Datatype, [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

const INT32_RANGE: [number, number] = [-2147483648, 2147483647];
/** Largest finite magnitudes: a JSON number past them would become Infinity in the tensor. */
const FLOAT32_MAX = 3.4028234663852886e38;
const FLOAT16_MAX = 65504;

export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const d of shape) count *= d;
  return count;
}

export const isB64Value = (value: unknown): value is { b64: string } =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { b64?: unknown }).b64 === 'string' && Object.keys(value).length === 1;

const utf8 = new TextEncoder();

/** Base64 alphabet → 6-bit value; 64 for whitespace (skipped), 255 for anything else. */
const BASE64_VALUES = (() => {
  const table = new Uint8Array(256).fill(255);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  for (const c of ' \t\r\n') table[c.charCodeAt(0)] = 64;
  return table;
})();

/** Node's Buffer where there is one (Node 20 has no Uint8Array.fromBase64 / toBase64); absent in Workers. */
const NodeBuffer = (
  globalThis as {
    Buffer?: {
      from(text: string, encoding: 'base64'): Uint8Array;
      from(buffer: ArrayBufferLike, offset: number, length: number): { toString(encoding: 'base64'): string };
      byteLength(text: string, encoding: 'utf8'): number;
    };
  }
).Buffer;

/**
 * Node's base64 decoder behind checks, since it is lenient: it skips characters outside the
 * alphabet, takes base64url's - and _, stops at a = inside, and reads a character past Latin-1
 * by its low byte. Undefined unless the text is plain standard base64 (no whitespace), which it
 * is when the decoded length is the one the text's length implies (each skipped character
 * shortens it), the text is ASCII (UTF-8 length = length) and holds no - or _; anything else is
 * left to the JS decoder, which accepts whitespace and names a bad character.
 */
function nodeFromBase64(text: string): Uint8Array | undefined {
  if (!NodeBuffer) return undefined;
  let end = text.length;
  if (text.charCodeAt(end - 1) === 61 /* = */) end -= text.charCodeAt(end - 2) === 61 ? 2 : 1;
  if (end % 4 === 1 || NodeBuffer.byteLength(text, 'utf8') !== text.length || text.includes('-') || text.includes('_')) return undefined;
  const decoded = NodeBuffer.from(text, 'base64');
  if (decoded.byteLength !== Math.floor((end * 3) / 4)) return undefined;
  return new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength);
}

/**
 * The platform's fast base64: the engine's own (Uint8Array.fromBase64 / toBase64: workerd and
 * Workers have them, Node 20 does not), else Node's Buffer (about 10x the JS loop on a 3 MB
 * tensor); undefined from fromBase64 leaves the text to the JS decoder.
 */
const native = {
  fromBase64: ((): ((text: string) => Uint8Array | undefined) => {
    const engine = (Uint8Array as unknown as { fromBase64?: (text: string) => Uint8Array }).fromBase64;
    if (!engine) return nodeFromBase64;
    return (text) => {
      try {
        return engine(text);
      } catch {
        return undefined; // invalid: the JS decoder finds the offending character for the message
      }
    };
  })(),
  toBase64: ((): ((bytes: Uint8Array) => string) | undefined => {
    const engine = (Uint8Array.prototype as unknown as { toBase64?: () => string }).toBase64;
    if (engine) return (bytes) => engine.call(bytes);
    if (NodeBuffer) return (bytes) => NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    return undefined;
  })(),
};

/** Decodes standard base64 (padding optional, whitespace ignored); 400s on bad input, naming the character. */
export function decodeBase64(text: string, field: string): Uint8Array {
  return native.fromBase64(text) ?? decodeBase64Js(text, field);
}

/** One-pass JS decoder, the same rules as Uint8Array.fromBase64's default (loose padding). */
function decodeBase64Js(text: string, field: string): Uint8Array {
  let padding = 0;
  let end = text.length;
  for (;;) {
    const last = text.charCodeAt(end - 1);
    if (end > 0 && BASE64_VALUES[last] === 64) end--;
    else if (end > 0 && last === 61 /* = */ && padding < 2) {
      end--;
      padding++;
    } else break;
  }
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let buffer = 0;
  let bits = 0;
  let length = 0;
  for (let i = 0; i < end; i++) {
    const code = text.charCodeAt(i);
    const value = code < 256 ? BASE64_VALUES[code]! : 255;
    if (value === 64) continue;
    if (value === 255) throw new CodecError(field, `b64 is not valid base64 (character ${JSON.stringify(text[i])} at ${i})`);
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[length++] = (buffer >> bits) & 0xff;
    }
  }
  if (bits >= 6) throw new CodecError(field, 'b64 is not valid base64 (truncated)');
  return length === out.length ? out : out.slice(0, length);
}

export function encodeBase64(bytes: Uint8Array): string {
  if (native.toBase64) return native.toBase64(bytes);
  let binary = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(binary);
}

/**
 * The shape of a nested list, read along its first elements. Leaves are numbers, booleans,
 * strings or {"b64": ...} objects; the shape is checked for raggedness when values are read.
 */
export function nestedShape(value: unknown): number[] {
  const shape: number[] = [];
  let cursor = value;
  while (Array.isArray(cursor)) {
    shape.push(cursor.length);
    if (cursor.length === 0) break;
    cursor = cursor[0];
  }
  return shape;
}

/** The largest magnitude a float tensor of this datatype holds (FP64 data still lands in float32). */
function floatLimit(target: TensorDtype, datatype: V2Datatype | null): number | undefined {
  if (target !== 'float32') return undefined;
  return datatype === 'FP16' ? FLOAT16_MAX : FLOAT32_MAX;
}

/** Reads one JSON leaf (or one binary element) into a number for a numeric model dtype, range-checked. */
export type LeafReader = (leaf: unknown, field: () => string) => number;

export function numberReader(target: TensorDtype, datatype: V2Datatype | null): LeafReader {
  const range = datatype ? INTEGER_RANGES[datatype] : target === 'int32' ? INT32_RANGE : undefined;
  const integral = range !== undefined || target === 'int32';
  const what = datatype ?? target;
  const floatMax = floatLimit(target, datatype);
  return (leaf, field) => {
    let n: number;
    if (typeof leaf === 'number') n = leaf;
    else if (typeof leaf === 'boolean' && (datatype === 'BOOL' || target === 'bool' || datatype === null)) n = leaf ? 1 : 0;
    else throw new CodecError(field(), `expected a number for ${what}, got ${leaf === null ? 'null' : Array.isArray(leaf) ? 'a list (the nesting is deeper than the shape)' : typeof leaf}`);
    if (!Number.isFinite(n)) throw new CodecError(field(), `${n} is not a finite number`);
    if (floatMax !== undefined && Math.abs(n) > floatMax) throw new CodecError(field(), `${n} is out of range for ${what} (largest magnitude ${floatMax})`);
    if (datatype === 'BOOL' && n !== 0 && n !== 1) throw new CodecError(field(), `BOOL values are true/false (or 0/1), got ${n}`);
    if (integral && !Number.isInteger(n)) throw new CodecError(field(), `${what} needs integers, got ${n}`);
    if (range && (n < range[0] || n > range[1])) throw new CodecError(field(), `${n} is out of range for ${what} [${range[0]}, ${range[1]}]`);
    if (target === 'int32' && (n < INT32_RANGE[0] || n > INT32_RANGE[1])) throw new CodecError(field(), `${n} does not fit the model's int32 input`);
    if (target === 'bool' && n !== 0 && n !== 1) throw new CodecError(field(), `the model's bool input takes true/false (or 0/1), got ${n}`);
    return n;
  };
}

export function allocate(dtype: TensorDtype, count: number): TypedValues {
  return dtype === 'int32' ? new Int32Array(count) : dtype === 'bool' ? new Uint8Array(count) : new Float32Array(count);
}

export interface DecodeOptions {
  /** The model input's dtype: values are converted (and range-checked) to it. */
  dtype: TensorDtype;
  /** The v2 datatype the client declared; null for TF Serving (JSON types only). */
  datatype?: V2Datatype | null;
  /** Cap on elements, checked before allocating. */
  maxElements?: number;
}

/**
 * Decodes values laid out as `shape` (nested to that shape, or flat when `flat` allows it)
 * into a typed array of the model's dtype (or byte strings for 'string').
 */
export function decodeValues(value: unknown, shape: readonly number[], field: string, options: DecodeOptions & { allowFlat?: boolean }): TensorValues {
  const count = elementCount(shape);
  if (options.maxElements !== undefined && count > options.maxElements) {
    throw new CodecError(field, `${count} elements exceed the limit of ${options.maxElements} per request`);
  }
  // v2 allows the data flat (row-major) instead of nested; shape 1-D is the same either way.
  const flat = Boolean(options.allowFlat) && shape.length > 1 && Array.isArray(value) && value.length === count && (count === 0 || !Array.isArray(value[0]));
  if (options.dtype === 'string') return decodeStrings(value, shape, field, flat);
  const out = allocate(options.dtype, count);
  const read = numberReader(options.dtype, options.datatype ?? null);
  // Finite JSON numbers go straight into a float32 tensor (unless v2 declared an integer datatype).
  const direct = options.dtype === 'float32' && (options.datatype == null || options.datatype === 'FP32' || options.datatype === 'FP64' || options.datatype === 'FP16');
  const limit = floatLimit(options.dtype, options.datatype ?? null) ?? 0;
  if (flat) {
    const list = value as unknown[];
    for (let i = 0; i < count; i++) out[i] = read(list[i], () => `${field}[${i}]`);
    return out;
  }
  let offset = 0;
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      out[offset++] = read(node, () => path);
      return;
    }
    if (!Array.isArray(node)) {
      throw new CodecError(path, `expected a list of ${shape[depth]} at depth ${depth} (shape [${shape.join(', ')}]), got ${node === null ? 'null' : typeof node}`);
    }
    if (node.length !== shape[depth]) {
      throw new CodecError(path, `expected ${shape[depth]} elements (shape [${shape.join(', ')}]), got ${node.length}: the list is ragged or the shape is wrong`);
    }
    if (depth === shape.length - 1) {
      // Innermost level: the hot loop, without building a path per element.
      for (let i = 0; i < node.length; i++) {
        const leaf = node[i];
        out[offset++] = direct && typeof leaf === 'number' && leaf <= limit && leaf >= -limit ? leaf : read(leaf, () => `${path}[${i}]`);
      }
      return;
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${path}[${i}]`);
  };
  walk(value, 0, field);
  return out;
}

function decodeStrings(value: unknown, shape: readonly number[], field: string, flat: boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  const leaf = (node: unknown, path: string) => {
    if (typeof node === 'string') out.push(utf8.encode(node));
    else if (isB64Value(node)) out.push(decodeBase64(node.b64, path));
    else throw new CodecError(path, `expected a string or {"b64": ...}, got ${node === null ? 'null' : typeof node}`);
  };
  if (flat) {
    (value as unknown[]).forEach((node, i) => leaf(node, `${field}[${i}]`));
    return out;
  }
  const walk = (node: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      leaf(node, path);
      return;
    }
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      throw new CodecError(path, `expected a list of ${shape[depth]} (shape [${shape.join(', ')}])`);
    }
    node.forEach((child, i) => walk(child, depth + 1, `${path}[${i}]`));
  };
  walk(value, 0, field);
  return out;
}

/** Raw little-endian bytes of a numeric tensor (TF Serving {"b64": ...} on a numeric input). */
export function decodeRawBytes(b64: string, dtype: TensorDtype, count: number, field: string): TypedValues {
  const bytes = decodeBase64(b64, field);
  const width = dtype === 'bool' ? 1 : 4;
  if (bytes.byteLength !== count * width) {
    throw new CodecError(field, `b64 holds ${bytes.byteLength} bytes; the input needs ${count} ${dtype} values (${count * width} bytes, little-endian)`);
  }
  const aligned = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return dtype === 'int32' ? new Int32Array(aligned) : dtype === 'bool' ? new Uint8Array(aligned) : new Float32Array(aligned);
}

/** Plain JS numbers (or booleans) of a tensor's values, for JSON. */
export function jsonValues(values: TypedValues, dtype: string): (number | boolean)[] {
  const out = new Array<number | boolean>(values.length);
  if (dtype === 'bool') for (let i = 0; i < values.length; i++) out[i] = values[i] !== 0;
  else for (let i = 0; i < values.length; i++) out[i] = values[i]!;
  return out;
}

/** Nests flat values into lists of `shape` (a scalar shape gives the single value). */
export function nest<T>(values: ArrayLike<T>, shape: readonly number[]): unknown {
  if (shape.length === 0) return values[0];
  let offset = 0;
  const build = (depth: number): unknown[] => {
    const size = shape[depth]!;
    const out = new Array<unknown>(size);
    if (depth === shape.length - 1) {
      for (let i = 0; i < size; i++) out[i] = values[offset++];
    } else {
      for (let i = 0; i < size; i++) out[i] = build(depth + 1);
    }
    return out;
  };
  return build(0);
}

/** Checks a request shape against a signature shape (-1 matches any size). */
export function checkShape(shape: readonly number[], expected: readonly number[], field: string): void {
  if (expected.length === 0 && shape.length === 0) return;
  const matches = shape.length === expected.length && shape.every((d, i) => expected[i] === -1 || expected[i] === d);
  if (!matches) throw new CodecError(field, `shape [${shape.join(', ')}] does not match the model's [${expected.map((d) => (d === -1 ? 'any' : d)).join(', ')}]`);
  if (shape.includes(0)) throw new CodecError(field, `shape [${shape.join(', ')}] has a dimension of 0: there is nothing to predict`);
}
