// TFRecord framing, as TensorFlow writes it: for each record
//   uint64 length (little endian) · uint32 masked CRC32C of those 8 bytes · data · uint32 masked CRC32C of data.
import { maskedCrc32c } from './crc32c.ts';

export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Splits a TFRecord file into its records; throws when a length or data CRC does not match. */
export function readRecords(file: Uint8Array): Uint8Array[] {
  const records: Uint8Array[] = [];
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let pos = 0;
  while (pos < file.length) {
    if (pos + 12 > file.length) throw new Error(`truncated record header at byte ${pos}`);
    const length = Number(view.getBigUint64(pos, true));
    if (view.getUint32(pos + 8, true) !== maskedCrc32c(file.subarray(pos, pos + 8))) throw new Error(`bad length CRC at byte ${pos}`);
    const start = pos + 12;
    if (start + length + 4 > file.length) throw new Error(`truncated record at byte ${pos}`);
    const data = file.subarray(start, start + length);
    if (view.getUint32(start + length, true) !== maskedCrc32c(data)) throw new Error(`bad data CRC in record at byte ${pos}`);
    records.push(data);
    pos = start + length + 4;
  }
  return records;
}
