// TensorBoard event files: CRC32C, TFRecord framing and Event protos, checked against a reference
// file that TensorBoard's own protobuf classes and RecordWriter wrote (test/fixtures/train/).
import { readFileSync } from 'node:fs';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32c, maskedCrc32c } from '../../models/train/crc32c.ts';
import { decodeEventFile, encodeFileVersionEvent, encodeHistogramEvent, encodeScalarEvent, EventFileWriter, histogramOf } from '../../models/train/tensorboard.ts';
import { frameRecord, readRecords } from '../../models/train/tfrecord.ts';

const reference = new Uint8Array(readFileSync(new URL('../fixtures/train/tensorboard-reference.tfevents', import.meta.url)));
const ascii = (text: string) => new TextEncoder().encode(text);

describe('crc32c', () => {
  it('matches the standard check values', () => {
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });
  it('masks as TFRecord does', () => {
    // Length header of the reference file's first record (24 bytes) and its stored masked CRC.
    const header = reference.subarray(0, 8);
    expect(maskedCrc32c(header)).toBe(new DataView(reference.buffer, reference.byteOffset).getUint32(8, true));
  });
});

describe('TFRecord framing', () => {
  it('reads the file TensorBoard wrote, checking every CRC', () => {
    const records = readRecords(reference);
    expect(records.map((r) => r.length)).toEqual([24, 50]);
  });
  it('writes byte-identical records', () => {
    const records = readRecords(reference);
    const rebuilt = new Uint8Array(reference.length);
    let offset = 0;
    for (const record of records) {
      const framed = frameRecord(record);
      rebuilt.set(framed, offset);
      offset += framed.length;
    }
    expect(rebuilt).toEqual(reference);
  });
  it('refuses a flipped bit in the data or the length', () => {
    const data = reference.slice();
    data[20] ^= 1;
    expect(() => readRecords(data)).toThrow(/bad data CRC/);
    const length = reference.slice();
    length[0] ^= 1;
    expect(() => readRecords(length)).toThrow(/bad length CRC/);
    expect(() => readRecords(reference.subarray(0, reference.length - 2))).toThrow(/truncated/);
  });
});

describe('Event protos', () => {
  it('encode exactly as TensorFlow serialises them', () => {
    const [version, scalars] = readRecords(reference);
    expect(encodeFileVersionEvent(1700000000.5)).toEqual(version);
    expect(encodeScalarEvent(3, { epoch_loss: 0.5, epoch_acc: 0.875 }, 1700000001.25)).toEqual(scalars);
  });
  it('decode the reference file', () => {
    expect(decodeEventFile(reference)).toEqual([
      { wallTime: 1700000000.5, step: 0, fileVersion: 'brain.Event:2', scalars: {} },
      { wallTime: 1700000001.25, step: 3, scalars: { epoch_loss: 0.5, epoch_acc: 0.875 } },
    ]);
  });
  it('a writer appends a version event then one event per call, skipping non-finite values', () => {
    const folder = mkdtempSync(join(tmpdir(), 'edgeflow-tb-'));
    const writer = new EventFileWriter(join(folder, 'train'));
    writer.scalars(1, { epoch_loss: 2.5 });
    writer.scalars(2, { epoch_loss: 1.25, epoch_mae: Number.NaN });
    expect(readdirSync(join(folder, 'train'))[0]).toMatch(/^events\.out\.tfevents\.\d+\./);
    const events = decodeEventFile(new Uint8Array(readFileSync(writer.path)));
    expect(events[0]!.fileVersion).toBe('brain.Event:2');
    expect(events.slice(1).map((e) => [e.step, e.scalars])).toEqual([
      [1, { epoch_loss: 2.5 }],
      [2, { epoch_loss: 1.25 }],
    ]);
  });
});

describe('weight histograms (HistogramProto)', () => {
  it('buckets values between min and max, the last limit DBL_MAX as TensorFlow writes it', () => {
    const h = histogramOf([0, 1, 1, 2, 3, 4], 4);
    expect(h).toEqual({ min: 0, max: 4, num: 6, sum: 11, sumSquares: 31, bucketLimit: [1, 2, 3, Number.MAX_VALUE], bucket: [1, 2, 1, 2] });
    expect(histogramOf([0.5, 0.5])).toEqual({ min: 0.5, max: 0.5, num: 2, sum: 1, sumSquares: 0.5, bucketLimit: [Number.MAX_VALUE], bucket: [2] });
    const random = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const spread = histogramOf(random);
    expect(spread.bucket).toHaveLength(30);
    expect(spread.bucket.reduce((a, b) => a + b, 0)).toBe(1000);
  });
  it("encode with summary.proto's field numbers: Value.histo = 5, HistogramProto 1-7 with packed doubles", () => {
    const bytes = encodeHistogramEvent(2, { 'dense/kernel': histogramOf([1, 3], 2) }, 0);
    const double = (v: number) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, true);
      return [...b];
    };
    const histo = [
      0x09,
      ...double(1), // min
      0x11,
      ...double(3), // max
      0x19,
      ...double(2), // num
      0x21,
      ...double(4), // sum
      0x29,
      ...double(10), // sum_squares
      0x32,
      16,
      ...double(2),
      ...double(Number.MAX_VALUE), // bucket_limit, packed
      0x3a,
      16,
      ...double(1),
      ...double(1), // bucket, packed
    ];
    const value = [0x0a, 12, ...new TextEncoder().encode('dense/kernel'), 0x2a, histo.length, ...histo];
    const summary = [0x0a, value.length, ...value];
    expect([...bytes]).toEqual([0x09, ...double(0), 0x10, 2, 0x2a, summary.length, ...summary]);
    expect(decodeEventFile(frameRecord(bytes))[0]!.histograms).toEqual({ 'dense/kernel': histogramOf([1, 3], 2) });
  });
  it('a writer appends one event per epoch with a histogram per tag, skipping weights with NaN', () => {
    const folder = mkdtempSync(join(tmpdir(), 'edgeflow-tb-histo-'));
    const writer = new EventFileWriter(join(folder, 'train'));
    writer.histograms(1, { 'conv/kernel': Float32Array.of(-1, 0, 1), 'conv/bias': Float32Array.of(0, 0), broken: Float32Array.of(1, Number.NaN) });
    const [, event] = decodeEventFile(new Uint8Array(readFileSync(writer.path)));
    expect(event!.step).toBe(1);
    expect(Object.keys(event!.histograms!)).toEqual(['conv/kernel', 'conv/bias']);
    expect(event!.histograms!['conv/kernel']).toMatchObject({ min: -1, max: 1, num: 3, sum: 0, sumSquares: 2 });
  });
});
