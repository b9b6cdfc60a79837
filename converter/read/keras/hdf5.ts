// A small typed seam over jsfive (pure-JS HDF5 reader that runs in Node and workerd without
// wasm): open a file, walk groups, read string attributes and numeric datasets as typed arrays.
import { Dataset, File, Group } from 'jsfive';
import { exactBuffer } from '../../../shared/bytes.ts';
import { ConversionError } from '../../../shared/errors.ts';

export { Group, Dataset };

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Opens an HDF5 file; a truncated or corrupt file becomes a ConversionError. */
export function openHdf5(bytes: Uint8Array, name: string): File {
  try {
    const file = new File(exactBuffer(bytes), name);
    void file.keys; // forces the root group's links to be read
    return file;
  } catch (error) {
    throw new ConversionError(`${name}: not a readable HDF5 file (${describe(error)}); is it truncated?`);
  }
}

/** Runs a jsfive read, turning its errors (often thrown strings or RangeErrors) into a ConversionError. */
export function guarded<T>(what: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ConversionError) throw error;
    throw new ConversionError(`could not read ${what} from the HDF5 file (${describe(error)}); is the file truncated or corrupt?`);
  }
}

/** HDF5 fixed-length strings come back padded with NULs. */
const clean = (text: string): string => text.replace(/\0+$/, '');

export function attrString(node: Group | Dataset, key: string): string | undefined {
  const value = guarded(`attribute ${key} of ${node.name}`, () => node.attrs[key]);
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return clean(value);
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return clean(value[0]);
  return String(value);
}

export function attrStrings(node: Group | Dataset, key: string): string[] | undefined {
  const value = guarded(`attribute ${key} of ${node.name}`, () => node.attrs[key]);
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map((item) => clean(String(item)));
  if (typeof value === 'string') return value === '' ? [] : [clean(value)];
  return [String(value)];
}

export function child(group: Group, key: string): Group | Dataset | undefined {
  if (!group.keys.includes(key)) return undefined;
  return guarded(`${group.name}/${key}`, () => group.get(key)) ?? undefined;
}

export function childGroup(group: Group, key: string): Group | undefined {
  const node = child(group, key);
  return node instanceof Group ? node : undefined;
}

export interface NumericArray {
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

/** The jsfive 0.4.2 internals the fast path below uses (the package is pinned to that exact version). */
interface DataObjectsInternals {
  fh: ArrayBuffer;
  find_msg_type(type: number): Array<Map<string, number>>;
  _get_data_message_properties(offset: number): [number, number, number, number];
}

const DATA_STORAGE_MESSAGE = 0x0008;
const CONTIGUOUS_LAYOUT = 1;

/**
 * Little-endian float32 stored contiguously (how h5py writes Keras weights) is copied straight
 * out of the file: jsfive's generic path builds a JS Array of boxed numbers first, which costs
 * about 100 ns and 8+ bytes per value: too slow and too big for a 128 MB Worker isolate.
 * Returns undefined when the dataset is laid out any other way (the generic path then reads it).
 */
export function contiguousFloat32(dataset: Dataset, count: number): Float32Array | undefined {
  if (dataset.dtype !== '<f4') return undefined;
  const objects = (dataset as unknown as { _dataobjects?: DataObjectsInternals })._dataobjects;
  if (!objects || !(objects.fh instanceof ArrayBuffer) || typeof objects.find_msg_type !== 'function') return undefined;
  const message = objects.find_msg_type(DATA_STORAGE_MESSAGE)[0];
  const messageOffset = message?.get('offset_to_message');
  if (messageOffset === undefined) return undefined;
  const [, , layout, propertyOffset] = objects._get_data_message_properties(messageOffset);
  if (layout !== CONTIGUOUS_LAYOUT) return undefined;
  const address = new DataView(objects.fh).getBigUint64(propertyOffset, true);
  if (address === 0xffffffffffffffffn) throw new ConversionError(`${dataset.name} has no stored values`);
  const start = Number(address);
  const end = start + count * 4;
  if (end > objects.fh.byteLength) throw new ConversionError(`${dataset.name} ends at byte ${end} but the file has ${objects.fh.byteLength}: is it truncated?`);
  return new Float32Array(objects.fh.slice(start, end));
}

/** A dataset's values: floats become float32 (float64/float16 are converted), integers int32. */
export function readDataset(dataset: Dataset): NumericArray {
  const dtype = dataset.dtype;
  if (typeof dtype !== 'string' || !/^[<>|=]?[fiub]\d$/.test(dtype)) {
    throw new ConversionError(`${dataset.name} has HDF5 type ${JSON.stringify(dtype)}, not a numeric array`);
  }
  const shape = [...dataset.shape];
  const expected = shape.reduce((a, b) => a * b, 1);
  const direct = guarded(dataset.name, () => contiguousFloat32(dataset, expected));
  if (direct) return { shape, dtype: 'float32', values: direct };
  const raw = guarded(dataset.name, () => dataset.value);
  if (raw.length !== expected) throw new ConversionError(`${dataset.name} holds ${raw.length} values but its shape [${shape.join(', ')}] needs ${expected}`);
  for (let i = 0; i < raw.length; i++) if (raw[i] === undefined) throw new ConversionError(`${dataset.name} has no stored values`);
  if (dtype.includes('f')) return { shape, dtype: 'float32', values: Float32Array.from(raw as ArrayLike<number>) };
  return { shape, dtype: 'int32', values: Int32Array.from(raw as ArrayLike<number>, Number) };
}
