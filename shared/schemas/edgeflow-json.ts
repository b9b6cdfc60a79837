// zod schema of models/<name>/<version>/edgeflow.json: our metadata for one published version.
import * as z from 'zod';
import { QuantizationDtype } from './model-json.ts';

export const TensorSignature = z.object({
  name: z.string(),
  dtype: z.string(),
  /** -1 for an unknown dimension (the batch, usually). */
  shape: z.array(z.number().int()),
});
export type TensorSignature = z.infer<typeof TensorSignature>;

export const FileEntry = z.object({ size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
export type FileEntry = z.infer<typeof FileEntry>;

export const WeightQuantization = z.object({
  dtype: z.union([QuantizationDtype, z.literal('float32'), z.literal('none')]),
  /** Values outside [min, max] were clipped to lower the quantization error. */
  clipped: z.boolean().optional(),
  /** Largest absolute difference between a weight and its dequantized value (for uint8/uint16: half a step, or the clipping distance). */
  maxError: z.number().optional(),
});
export type WeightQuantization = z.infer<typeof WeightQuantization>;

export const OutputReport = z.object({
  name: z.string(),
  kind: z.enum(['float', 'integer']),
  maxAbsError: z.number(),
  /** Signal-to-noise ratio of a float output in dB; null when it is unchanged. */
  snrDb: z.number().nullable(),
  /** Share of an integer output's elements equal to the reference. */
  agreement: z.number().nullable(),
});
export type OutputReport = z.infer<typeof OutputReport>;

export const AccuracyReport = z.object({
  samples: z.number().int().nonnegative(),
  calibration: z.string(),
  /** synthetic: inputs generated from the signature and the model's hints; data: a calibration file. */
  calibrationKind: z.enum(['synthetic', 'data']).optional(),
  tolerance: z.number(),
  /** The SNR floor in dB every float output had to reach, when one was asked (--min-snr, auto:snr=). */
  minSnrDb: z.number().optional(),
  maxAbsError: z.number(),
  meanAbsError: z.number(),
  /** Over the float outputs: maxAbsError divided by max(1, largest absolute reference output): absolute for outputs in [-1, 1], relative beyond. */
  relativeError: z.number(),
  top1Agreement: z.number().nullable(),
  /** Share of integer-output elements (indices, counts) equal to the reference; null when there are none. */
  integerAgreement: z.number().nullable().optional(),
  outputs: z.array(OutputReport).optional(),
  /** The float32 source run on TF.js's cpu reference backend next to the serving backend (Node conversions). */
  backendCheck: z.object({ serving: z.string(), reference: z.literal('cpu'), samples: z.number().int(), relativeError: z.number(), integerAgreement: z.number().nullable() }).optional(),
  passed: z.boolean(),
});
export type AccuracyReport = z.infer<typeof AccuracyReport>;

/** How the runtime runs a version: the stored graph, the stored layers model, or that layers model compiled to fused graph ops at load. */
export const ServingReport = z.object({
  runtime: z.enum(['layers', 'graph', 'compiled-graph']),
  /** Graph ops by type, for a model compiled at conversion (`--format graph`). */
  ops: z.record(z.string(), z.number().int()).optional(),
  fusedLayers: z.number().int().optional(),
  /** Why a layers model is not compiled at load. */
  reason: z.string().optional(),
  /** Layers-runtime time over compiled-graph time on the calibration inputs, measured at conversion. */
  speedup: z.number().optional(),
});
export type ServingReport = z.infer<typeof ServingReport>;

/** How an image becomes the model's single input: resized to height x width, pixel p (0..255) → p * scale + offset. */
export const ImageInput = z.object({
  height: z.number().int().positive(),
  width: z.number().int().positive(),
  channels: z.enum(['rgb', 'grayscale']),
  scale: z.number().finite(),
  offset: z.number().finite(),
});
export type ImageInput = z.infer<typeof ImageInput>;

export const EdgeflowJson = z.object({
  edgeflow: z.literal(1),
  name: z.string(),
  version: z.number().int().positive(),
  created: z.string(),
  format: z.enum(['layers-model', 'graph-model']),
  source: z.object({
    format: z.string(),
    files: z.array(z.string()),
    bytes: z.number().int().nonnegative(),
    uploadId: z.string().optional(),
    generatedBy: z.string().optional(),
  }),
  signature: z.object({ inputs: z.array(TensorSignature), outputs: z.array(TensorSignature) }),
  quantization: z.object({
    spec: z.string(),
    weights: z.record(z.string(), WeightQuantization),
    /** For `auto`: how many trial conversions the search ran, and the chosen mix's relative drift. */
    auto: z.object({ trials: z.number().int(), drift: z.number() }).optional(),
  }),
  /**
   * Rewrites done before quantizing: BatchNormalization layers folded into the layer before them;
   * layer pairs whose channel ranges were equalized (`A → B`, converter/optimize/equalize.ts).
   */
  optimizations: z.object({ batchNormFolded: z.number().int().nonnegative().optional(), equalized: z.array(z.string()).optional() }).optional(),
  sizes: z.object({ float32: z.number().int().nonnegative(), converted: z.number().int().nonnegative(), source: z.number().int().nonnegative() }),
  files: z.record(z.string(), FileEntry),
  report: AccuracyReport,
  serving: ServingReport.optional(),
  /** Class names of a classifier's single output (index = class); `:classify` answers them. */
  labels: z.array(z.string()).optional(),
  /** The image input spec, given (`--image`) or inferred from an [-1, H, W, 1|3] input; `:classify` needs it. */
  image: ImageInput.optional(),
  /** Metrics of the training run that produced the model, when it came from `edgeflow train`. */
  training: z.record(z.string(), z.unknown()).optional(),
});
export type EdgeflowJson = z.infer<typeof EdgeflowJson>;
