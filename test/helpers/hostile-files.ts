// Builders of hostile files for the tests: zips written by hand (so their declared sizes can lie)
// and deflate bombs made in 1 MiB chunks, never holding what they expand to.
import { Deflate } from 'fflate';
import { concatBytes } from '../../shared/bytes.ts';
import { tinyDenseModel } from './tiny-models.ts';

const encoder = new TextEncoder();
const MiB = 2 ** 20;

/** A zip written by hand, so its declared sizes can lie (method 0 stored, 8 deflate; CRCs are 0). */
export function zipOf(entries: { name: string; data: Uint8Array; method?: number; size?: number }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const { name, data, method = 0, size = data.length } of entries) {
    const nameBytes = encoder.encode(name);
    const local = new Uint8Array(30 + nameBytes.length);
    const l = new DataView(local.buffer);
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(8, method, true);
    l.setUint32(18, data.length, true);
    l.setUint32(22, size, true);
    l.setUint16(26, nameBytes.length, true);
    local.set(nameBytes, 30);
    const header = new Uint8Array(46 + nameBytes.length);
    const c = new DataView(header.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(10, method, true);
    c.setUint32(20, data.length, true);
    c.setUint32(24, size, true);
    c.setUint16(28, nameBytes.length, true);
    c.setUint32(42, offset, true);
    header.set(nameBytes, 46);
    parts.push(local, data);
    central.push(header);
    offset += local.length + data.length;
  }
  const directory = concatBytes(central);
  const end = new Uint8Array(22);
  const e = new DataView(end.buffer);
  e.setUint32(0, 0x06054b50, true);
  e.setUint16(8, entries.length, true);
  e.setUint16(10, entries.length, true);
  e.setUint32(12, directory.length, true);
  e.setUint32(16, offset, true);
  return concatBytes([...parts, directory, end]);
}

/** A raw deflate stream of n zero bytes. */
export const deflatedZeros = (n: number) => deflated([n]);

/** A zip of one stored entry of n zero bytes, as parts (a number is that many zero bytes): never n bytes at once. */
export function storedZerosZip(name: string, n: number): (Uint8Array | number)[] {
  const [local, directory] = [zipOf([{ name, data: new Uint8Array(0), size: n }])].map((z) => [z.subarray(0, 30 + name.length), z.subarray(30 + name.length)])[0]!;
  const fix = (bytes: Uint8Array, at: number[], value: number) => {
    const copy = new Uint8Array(bytes);
    for (const offset of at) new DataView(copy.buffer).setUint32(offset, value, true);
    return copy;
  };
  // Compressed sizes at 18 (local) and 20 (central); the directory's offset in the end record.
  return [fix(local, [18], n), n, fix(fix(directory, [20], n), [directory.length - 22 + 16], local.length + n)];
}

/** A raw deflate stream of these parts, made in 1 MiB chunks. */
export function deflated(parts: (Uint8Array | number)[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const deflate = new Deflate({ level: 1 }, (chunk) => chunks.push(chunk));
  const zeros = new Uint8Array(MiB);
  for (const part of parts) {
    if (typeof part !== 'number') deflate.push(part);
    else for (let done = 0; done < part; done += MiB) deflate.push(zeros.subarray(0, Math.min(MiB, part - done)));
  }
  deflate.push(new Uint8Array(0), true);
  return concatBytes(chunks);
}

/**
 * A zip of a layers model Dense(inputs → units, relu) → Dense(units → 4) whose weights are all
 * zeros, deflated: a few KiB to upload, a weights file of 4·(inputs·units + 5·units + 4) bytes
 * once unpacked (the model.json of tinyDenseModel with its shapes widened).
 */
export async function zeroDenseZip(inputs: number, units: number): Promise<Uint8Array> {
  const files = await tinyDenseModel();
  const weightsPath = [...files.keys()].find((k) => k !== 'model.json')!;
  const json = JSON.parse(new TextDecoder().decode(files.get('model.json')!));
  const [hidden] = json.modelTopology.config.layers as { config: { units: number; batch_input_shape?: (number | null)[] } }[];
  hidden!.config.batch_input_shape = [null, inputs];
  hidden!.config.units = units;
  const shapes: Record<string, number[]> = { 'hidden/kernel': [inputs, units], 'hidden/bias': [units], 'probs/kernel': [units, 4], 'probs/bias': [4] };
  for (const w of json.weightsManifest[0].weights as { name: string; shape: number[] }[]) w.shape = shapes[w.name]!;
  const weightBytes = 4 * (inputs * units + 5 * units + 4);
  return zipOf([
    { name: 'model.json', data: encoder.encode(JSON.stringify(json)) },
    { name: weightsPath, data: deflatedZeros(weightBytes), method: 8, size: weightBytes },
  ]);
}
