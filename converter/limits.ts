// The conversion budgets, named and defaulted in one place (docs/convert.md lists them): what an
// upload may cost before anything is built. Inputs past them are refused as `unconvertible`
// with the figure, before TF.js sees them, so a tiny hostile upload cannot take gigabytes or
// minutes, and a retry (which would cost the same) is never attempted.

export interface ConversionLimits {
  /** Bytes of a model.json (or any JSON config) the converter parses. */
  maxJsonBytes: number;
  /** Nesting depth of arrays / objects in that JSON. */
  maxJsonDepth: number;
  /** Bytes all archives of one upload may expand to, nested archives included (one budget for the whole upload). */
  maxUnzippedBytes: number;
  /** Entries all archives of one upload may hold. */
  maxZipEntries: number;
  /** Archives nested inside archives. */
  maxZipNesting: number;
  /** Largest size of one dimension of an input or a layer's shape. */
  maxDimension: number;
  /** Estimated bytes of the largest activation over the calibration batch (float32). */
  maxActivationBytes: number;
  /** Nodes of a graph model, layers of a layers model. */
  maxNodes: number;
  /** Wall time a conversion sharing its thread with serving may take (checked at its pauses, converter/pace.ts). */
  maxConvertMs: number;
  /** Where these budgets apply, for messages: "of a conversion on Node". */
  scope: string;
}

export const DEFAULT_LIMITS: ConversionLimits = {
  maxJsonBytes: 64 * 2 ** 20,
  maxJsonDepth: 100,
  maxUnzippedBytes: 2 ** 30,
  maxZipEntries: 10_000,
  maxZipNesting: 2,
  maxDimension: 1 << 20,
  maxActivationBytes: 512 * 2 ** 20,
  maxNodes: 50_000,
  maxConvertMs: Infinity,
  scope: 'of a conversion on Node',
};

/**
 * A conversion in a Workers isolate (128 MB for everything: the source, what it unpacks to, the
 * decoded weights and the wasm heap): archives may unpack to 64 MiB in all, JSON may be 16 MiB;
 * a conversion there yields between its steps and stops after 2 minutes (a queue consumer's
 * CPU limit would otherwise end it without a word).
 * The consumer's own figures (consumer.ts WORKER_CONSUMER_LIMITS: 32 MiB of upload, 12 MiB of
 * float32 weights by default) come on top.
 */
export const WORKER_LIMITS: ConversionLimits = {
  ...DEFAULT_LIMITS,
  maxJsonBytes: 16 * 2 ** 20,
  maxUnzippedBytes: 64 * 2 ** 20,
  maxConvertMs: 120_000,
  scope: 'of a conversion in a Worker (a 128 MB isolate)',
};

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)} MiB`;

/** V8 heap (MiB) of the Worker a conversion runs in on Node (converter/isolated.ts). */
export const DEFAULT_WORKER_HEAP_MB = 2048;
