// Request limits, typed once with their defaults merged in one place.
export interface Limits {
  /** Largest request body; beyond it: 413. */
  maxBodyBytes: number;
  /** Largest batch (first dimension) of any input. */
  maxBatch: number;
  /** Most tensor elements in one request, over all inputs. */
  maxElements: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxBodyBytes: 8 * 1024 * 1024,
  maxBatch: 64,
  maxElements: 2 * 1024 * 1024,
};

export function resolveLimits(partial: Partial<Limits> = {}): Limits {
  return { ...DEFAULT_LIMITS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) };
}
