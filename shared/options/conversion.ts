// The conversion options, one schema for every way they arrive: CLI flags, admin query / form
// fields, the upload manifest, the training job. Defaults live here and are merged once, by
// resolveConversionOptions; the pipeline (converter/convert.ts) only reads resolved options.
import * as z from 'zod';
import { EdgeflowError } from '../errors.ts';
import { ImageOption } from './image-spec.ts';
import { MAX_SNR_DB, parseQuantizeSpec } from './quantize-spec.ts';

export const DEFAULT_QUANTIZE = 'float16';
/** Largest output difference allowed, divided by max(1, largest reference output). */
export const DEFAULT_TOLERANCE = 0.05;
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;
export const DEFAULT_FORMAT = 'layers';

const quantizeSpec = z.string().superRefine((text, context) => {
  try {
    parseQuantizeSpec(text);
  } catch (error) {
    context.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

/** What a user may set; every field optional (an upload manifest stores exactly what was asked). */
export const ConversionOptions = z.object({
  /** none | float16 | uint16 | uint8 | auto | per-weight rules (shared/options/quantize-spec.ts). */
  quantize: quantizeSpec.optional(),
  shardBytes: z.number().int().min(1024, 'shards must be at least 1 KiB').optional(),
  tolerance: z.number().nonnegative().optional(),
  /**
   * The tolerance in decibels as well: every float output's SNR (10·log10 of signal over error
   * power, on the calibration inputs) at least this; `--quantize auto:snr=<dB>` says the same for
   * auto. Both limits hold when both are given (the stricter SNR of the two).
   */
  minSnrDb: z.number().min(0).max(MAX_SNR_DB, `at most ${MAX_SNR_DB} dB`).optional(),
  /** Do not fold BatchNormalization layers (converter/optimize/fold-batchnorm.ts). */
  keepBatchNorm: z.boolean().optional(),
  /**
   * Cross-layer equalization (converter/optimize/equalize.ts) of Conv2D / Dense pairs (graph
   * models: Conv2D / MatMul nodes) before weights are stored at uint8 / uint16: tried by default
   * with real calibration data and kept where it lowers the measured output noise; false never tries it.
   */
  equalize: z.boolean().optional(),
  /**
   * What a Keras / TF.js layers model is stored as: `layers` (as given; the runtime still runs it
   * compiled to fused ops where it can), `graph` (compiled to a TF.js graph model, shared/graph/),
   * `auto` (graph where the compiler lowers every layer, else layers). Graph models stay graph models.
   */
  format: z.enum(['layers', 'graph', 'auto']).optional(),
  /** Class names of the single output (index = class), recorded in edgeflow.json for `:classify`. */
  labels: z.array(z.string().trim().min(1, 'a label is empty')).min(1).max(100_000).optional(),
  /** How an image becomes the model's input (shared/options/image-spec.ts); inferred from an [-1, H, W, 1|3] input when absent. */
  image: ImageOption.optional(),
});
export type ConversionOptions = z.infer<typeof ConversionOptions>;

/** Every option filled in but labels, image and minSnrDb, which stay absent unless given. */
export type ResolvedConversionOptions = Required<Omit<ConversionOptions, 'labels' | 'image' | 'minSnrDb'>> & Pick<ConversionOptions, 'labels' | 'image' | 'minSnrDb'>;

/** The SNR floor asked by minSnrDb and by an `auto:snr=` spec: the stricter of the two. */
function snrFloor(options: ConversionOptions): number | undefined {
  const spec = options.quantize === undefined ? undefined : parseQuantizeSpec(options.quantize);
  const fromSpec = spec?.kind === 'auto' ? spec.minSnrDb : undefined;
  const floors = [options.minSnrDb, fromSpec].filter((v): v is number => v !== undefined);
  return floors.length ? Math.max(...floors) : undefined;
}

/** The one place defaults are filled in. */
export function resolveConversionOptions(options: ConversionOptions = {}): ResolvedConversionOptions {
  const minSnrDb = snrFloor(options);
  return {
    quantize: options.quantize ?? DEFAULT_QUANTIZE,
    shardBytes: options.shardBytes ?? DEFAULT_SHARD_BYTES,
    tolerance: options.tolerance ?? DEFAULT_TOLERANCE,
    keepBatchNorm: options.keepBatchNorm ?? false,
    equalize: options.equalize ?? true,
    format: options.format ?? DEFAULT_FORMAT,
    ...(options.labels ? { labels: options.labels } : {}),
    ...(options.image ? { image: options.image } : {}),
    ...(minSnrDb !== undefined ? { minSnrDb } : {}),
  };
}

/** `4MiB`, `512kb`, `1048576` → bytes; a bad_request naming the text otherwise. */
export function parseByteSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i.exec(text.trim());
  if (!match) throw new EdgeflowError('bad_request', `bad size ${JSON.stringify(text)}: use bytes or a unit like 4MiB`);
  const units: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
  const bytes = Math.round(Number(match[1]) * units[(match[2] ?? 'b').toLowerCase()]!);
  if (bytes < 1024) throw new EdgeflowError('bad_request', `size ${text} is too small: shards must be at least 1 KiB`);
  return bytes;
}
