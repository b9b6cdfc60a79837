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
};

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)} MiB`;

/** V8 heap (MiB) of the Worker a conversion runs in on Node (converter/isolated.ts). */
export const DEFAULT_WORKER_HEAP_MB = 2048;
