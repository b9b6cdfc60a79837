// TensorBoard event files: Event protos (tensorflow/core/util/event.proto) in TFRecord framing.
// One writer per run folder (Keras's layout: <logdir>/train and <logdir>/validation, same tags),
// so `tensorboard --logdir <logdir>` overlays training and validation curves.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fixedDouble, fixedFloat, ProtoWriter, readFields } from './protobuf.ts';
import { frameRecord, readRecords } from './tfrecord.ts';

// Field numbers of Event, Summary and Summary.Value.
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
const SUMMARY = { value: 1 } as const;
const VALUE = { tag: 1, simpleValue: 2 } as const;

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
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
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
          for (const part of readFields(value.value)) {
            if (part.number === VALUE.tag && part.wire === 2) tag = new TextDecoder().decode(part.value);
            if (part.number === VALUE.simpleValue && part.wire === 5) scalar = fixedFloat(part.value);
          }
          if (scalar !== undefined) event.scalars[tag] = scalar;
        }
      }
    }
    return event;
  });
}
