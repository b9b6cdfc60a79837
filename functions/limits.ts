// Request limits (typed, with their defaults, in shared/options/serving.ts) merged in one place,
// and their checks (shared by the TF Serving and v2 decoders).
import { CodecError } from '../shared/codecs.ts';
import { DEFAULT_LIMITS, type Limits } from '../shared/options/serving.ts';

export { DEFAULT_LIMITS, type Limits };

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
