// Request limits, typed once with their defaults merged in one place, and their checks
// (shared by the TF Serving and v2 decoders).
import { CodecError } from '../shared/codecs.ts';

export interface Limits {
  /** Largest request body; beyond it: 413. */
  maxBodyBytes: number;
  /** Largest batch (first dimension) of any input. */
  maxBatch: number;
  /** Most tensor elements in one request, over all inputs. */
  maxElements: number;
  /** Most prediction requests running or waiting at once per process / isolate; beyond it: 503 with Retry-After. */
  maxInFlight: number;
  /** Largest image `:classify` / `:regress` decode (width x height, read from the header before decoding); beyond it: 413. */
  maxImagePixels: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 8 * 1024 * 1024,
  maxBatch: 64,
  maxElements: 2 * 1024 * 1024,
  maxInFlight: 64,
  // Measured on Node: a 3 MP JPEG took 0.8 s and ~130 MiB of RSS to decode with jpeg-js (its
  // component planes, 12+ bytes a pixel live, plus garbage): 4 MP keeps a decode clear of a 128 MB
  // isolate's model memory. Models take small images: clients should send them downscaled.
  maxImagePixels: 4_000_000,
};

export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
}

export function checkBatch(batch: number, field: string, limits: Limits): void {
  if (batch > limits.maxBatch) throw new CodecError(field, `batch of ${batch} exceeds the limit of ${limits.maxBatch}`);
}

/** Counts a request's elements over all its inputs against maxElements, before any is allocated. */
export class ElementBudget {
  private used = 0;
  constructor(private readonly limits: Limits) {}
  take(count: number, field: string): void {
    this.used += count;
    if (this.used > this.limits.maxElements) throw new CodecError(field, `the request holds more than the limit of ${this.limits.maxElements} elements`);
  }
}
