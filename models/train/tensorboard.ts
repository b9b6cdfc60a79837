// TensorBoard event files: Event protos (tensorflow/core/util/event.proto) in TFRecord framing.
// One writer per run folder (Keras's layout: <logdir>/train and <logdir>/validation, same tags),
// so `tensorboard --logdir <logdir>` overlays training and validation curves. Scalars are
// Summary.Value.simple_value; weight histograms are Summary.Value.histo (a HistogramProto,
// tensorflow/core/framework/summary.proto), which TensorBoard's Histograms and Distributions tabs show.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fixedDouble, fixedFloat, packedDoubles, ProtoWriter, readFields } from './protobuf.ts';
import { frameRecord, readRecords } from './tfrecord.ts';

// Field numbers of Event, Summary and Summary.Value.
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
const SUMMARY = { value: 1 } as const;
const VALUE = { tag: 1, simpleValue: 2, histo: 5 } as const;
const HISTOGRAM = { min: 1, max: 2, num: 3, sum: 4, sumSquares: 5, bucketLimit: 6, bucket: 7 } as const;

/** A HistogramProto: bucket i counts values in [bucketLimit[i-1], bucketLimit[i]) (the first from min). */
export interface Histogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  bucketLimit: number[];
  bucket: number[];
}

/**
 * `buckets` equal-width buckets from min to max. As TensorFlow's histograms, the last limit is
 * DBL_MAX (TensorBoard draws the last bucket up to max), so every value lands in a bucket.
 */
export function histogramOf(values: ArrayLike<number>, buckets = 30): Histogram {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    sumSquares += v * v;
  }
  const count = max > min ? buckets : 1;
  const width = (max - min) / count;
  const bucket = new Array<number>(count).fill(0);
  for (let i = 0; i < values.length; i++) bucket[Math.min(count - 1, Math.floor((values[i]! - min) / (width || 1)))]! += 1;
  const bucketLimit = Array.from({ length: count }, (_, i) => (i === count - 1 ? Number.MAX_VALUE : min + (i + 1) * width));
  return values.length === 0 ? { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] } : { min, max, num: values.length, sum, sumSquares, bucketLimit, bucket };
}

export function encodeHistogramEvent(step: number, histograms: Record<string, Histogram>, wallTime = Date.now() / 1000): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, h] of Object.entries(histograms)) {
    const histo = new ProtoWriter()
      .double(HISTOGRAM.min, h.min)
      .double(HISTOGRAM.max, h.max)
      .double(HISTOGRAM.num, h.num)
      .double(HISTOGRAM.sum, h.sum)
      .double(HISTOGRAM.sumSquares, h.sumSquares)
      .packedDoubles(HISTOGRAM.bucketLimit, h.bucketLimit)
      .packedDoubles(HISTOGRAM.bucket, h.bucket);
    summary.message(SUMMARY.value, new ProtoWriter().string(VALUE.tag, tag).message(VALUE.histo, histo));
  }
  return new ProtoWriter().double(EVENT.wallTime, wallTime).int64(EVENT.step, step).message(EVENT.summary, summary).finish();
}

export function encodeScalarEvent(step: number, scalars: Record<string, number>, wallTime = Date.now() / 1000): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(scalars)) {
    summary.message(SUMMARY.value, new ProtoWriter().string(VALUE.tag, tag).float(VALUE.simpleValue, value));
  }
  return new ProtoWriter().double(EVENT.wallTime, wallTime).int64(EVENT.step, step).message(EVENT.summary, summary).finish();
}

export function encodeFileVersionEvent(wallTime = Date.now() / 1000): Uint8Array {
  return new ProtoWriter().double(EVENT.wallTime, wallTime).string(EVENT.fileVersion, 'brain.Event:2').finish();
}

/** Appends events to one events.out.tfevents.* file, flushing each record as it is written. */
export class EventFileWriter {
  readonly path: string;

  constructor(folder: string) {
    mkdirSync(folder, { recursive: true });
    const now = Date.now();
    this.path = join(folder, `events.out.tfevents.${Math.floor(now / 1000)}.${hostname()}.${process.pid}.edgeflow`);
    writeFileSync(this.path, frameRecord(encodeFileVersionEvent(now / 1000)));
  }

  scalars(step: number, values: Record<string, number>): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
    if (Object.keys(finite).length > 0) appendFileSync(this.path, frameRecord(encodeScalarEvent(step, finite)));
  }

  /** One event with a histogram of each named set of values (weights with a non-finite value are skipped). */
  histograms(step: number, values: Record<string, ArrayLike<number>>): void {
    const histograms = Object.fromEntries(
      Object.entries(values)
        .filter(([, v]) => v.length > 0 && Array.prototype.every.call(v, Number.isFinite))
        .map(([tag, v]) => [tag, histogramOf(v)]),
    );
    if (Object.keys(histograms).length > 0) appendFileSync(this.path, frameRecord(encodeHistogramEvent(step, histograms)));
  }
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
  /** Present when the event holds histograms. */
  histograms?: Record<string, Histogram>;
}

function decodeHistogram(bytes: Uint8Array): Histogram {
  const h: Histogram = { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [], bucket: [] };
  const doubles: Record<number, keyof Histogram> = { [HISTOGRAM.min]: 'min', [HISTOGRAM.max]: 'max', [HISTOGRAM.num]: 'num', [HISTOGRAM.sum]: 'sum', [HISTOGRAM.sumSquares]: 'sumSquares' };
  for (const field of readFields(bytes)) {
    const name = doubles[field.number];
    if (name && field.wire === 1) (h as unknown as Record<string, number>)[name] = fixedDouble(field.value);
    else if (field.number === HISTOGRAM.bucketLimit && field.wire === 2) h.bucketLimit.push(...packedDoubles(field.value));
    else if (field.number === HISTOGRAM.bucket && field.wire === 2) h.bucket.push(...packedDoubles(field.value));
  }
  return h;
}

/** Reads an event file back (CRCs checked by readRecords): used by the tests and handy for debugging. */
export function decodeEventFile(file: Uint8Array): DecodedEvent[] {
  return readRecords(file).map((record) => {
    const event: DecodedEvent = { wallTime: 0, step: 0, scalars: {} };
    for (const field of readFields(record)) {
      if (field.number === EVENT.wallTime && field.wire === 1) event.wallTime = fixedDouble(field.value);
      else if (field.number === EVENT.step && field.wire === 0) event.step = Number(field.value);
      else if (field.number === EVENT.fileVersion && field.wire === 2) event.fileVersion = new TextDecoder().decode(field.value);
      else if (field.number === EVENT.summary && field.wire === 2) {
        for (const value of readFields(field.value)) {
          if (value.number !== SUMMARY.value || value.wire !== 2) continue;
          let tag = '';
          let scalar: number | undefined;
          let histogram: Histogram | undefined;
          for (const part of readFields(value.value)) {
            if (part.number === VALUE.tag && part.wire === 2) tag = new TextDecoder().decode(part.value);
            if (part.number === VALUE.simpleValue && part.wire === 5) scalar = fixedFloat(part.value);
            if (part.number === VALUE.histo && part.wire === 2) histogram = decodeHistogram(part.value);
          }
          if (scalar !== undefined) event.scalars[tag] = scalar;
          if (histogram) event.histograms = { ...event.histograms, [tag]: histogram };
        }
      }
    }
    return event;
  });
}
