// The serving defaults, one place for both servers (Node and Workers): request limits, model
// memory budgets, the index.json cache time and micro-batching's wait. Apart from the server so
// that `edgeflow serve` can print them, and its cluster primary parse its flags, without loading
// the server (Hono, TF.js).

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

/**
 * Float32 weight bytes kept loaded, sized for a Workers isolate (128 MB): a model's wasm heap is
 * about 3x its weights once it has run (XNNPACK packs a copy), plus activations, JSON and code.
 */
export const DEFAULT_MEMORY_BUDGET_BYTES = 24 * 1024 * 1024;
/** Node processes have far more memory than an isolate. */
export const DEFAULT_NODE_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024;
export const DEFAULT_INDEX_TTL_MS = 5_000;
/** Micro-batching: longest a request waits for others before a partial batch runs (TF Serving's batch_timeout_micros). */
export const DEFAULT_BATCH_TIMEOUT_MICROS = 1000;

/** How long an upload's claim (`serve --watch`, `watch`) lasts without a heartbeat: a crashed holder's upload waits this long. */
export const DEFAULT_LEASE_MS = 30_000;
