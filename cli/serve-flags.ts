// The `edgeflow serve` flags as parseArgs gives them, checked and given their defaults (zod), to
// the server's options. Apart from serve.ts so that a cluster primary forks its workers before
// loading zod (each worker checks the same flags; the primary checks them while they start).
import * as z from 'zod';
import { availableParallelism } from 'node:os';
import { checkLeaseMs } from '../shared/bucket/claim.ts';
import { parseDuration } from '../shared/duration.ts';
import { EdgeflowError } from '../shared/errors.ts';
import { DEFAULT_BATCH_TIMEOUT_MICROS, DEFAULT_LEASE_MS } from '../shared/options/serving.ts';

/** A flag given as text that must be a number ≥ 0 (or, `count`, a whole number ≥ 1). */
const nonNegative = (flag: string, count = false) =>
  z
    .string()
    .optional()
    .transform((text, context) => {
      if (text === undefined) return undefined;
      const n = Number(text);
      const bad = count ? !Number.isInteger(n) || n < 1 : !Number.isFinite(n) || n < 0;
      if (bad) {
        context.addIssue({ code: 'custom', message: `${flag} needs ${count ? 'a whole number ≥ 1' : 'a non-negative number'}, got ${JSON.stringify(text)}` });
        return z.NEVER;
      }
      return n;
    });

/** A flag given as text that must be a whole number ≥ 0. */
const wholeNumber = (flag: string) => nonNegative(flag).refine((n) => n === undefined || Number.isInteger(n), `${flag} needs a whole number ≥ 0`);

/** The serve flags as parseArgs gives them, with their defaults, to the server's options. */
export const ServeFlags = z
  .object({
    store: z.string(),
    port: z
      .string()
      .default('8080')
      .transform((text, context) => {
        const port = Number(text);
        if (text.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
          context.addIssue({ code: 'custom', message: `--port needs a port number 0-65535 (0 picks a free one), got ${JSON.stringify(text)}` });
          return z.NEVER;
        }
        return port;
      }),
    host: z.string().default('127.0.0.1'),
    'memory-budget': nonNegative('--memory-budget'),
    'index-ttl': nonNegative('--index-ttl'),
    'warm-up': z.enum(['ready', 'always', 'never'], { error: (issue) => `--warm-up must be ready, always or never, got ${JSON.stringify(issue.input)}` }).default('ready'),
    'max-body': nonNegative('--max-body'),
    'max-batch': nonNegative('--max-batch'),
    'max-elements': nonNegative('--max-elements'),
    'max-image-pixels': nonNegative('--max-image-pixels', true),
    watch: z.boolean().default(false),
    lease: z
      .string()
      .optional()
      .transform((text, context) => {
        if (text === undefined) return DEFAULT_LEASE_MS;
        try {
          return checkLeaseMs(parseDuration(text));
        } catch (error) {
          context.addIssue({ code: 'custom', message: (error as Error).message });
          return z.NEVER;
        }
      }),
    'max-upload': nonNegative('--max-upload'),
    workers: nonNegative('--workers', true),
    'max-in-flight': nonNegative('--max-in-flight', true),
    'batch-max-size': nonNegative('--batch-max-size', true),
    'batch-timeout-us': nonNegative('--batch-timeout-us'),
    'batch-max-enqueued': wholeNumber('--batch-max-enqueued'),
  })
  .superRefine((flags, context) => {
    const unused = (['batch-timeout-us', 'batch-max-enqueued'] as const).find((flag) => flags[flag] !== undefined);
    if (unused && (flags['batch-max-size'] ?? 1) < 2) context.addIssue({ code: 'custom', message: `--${unused} needs --batch-max-size 2 or more (micro-batching is off)` });
  })
  .transform((flags) => ({
    store: flags.store,
    port: flags.port,
    hostname: flags.host,
    memoryBudgetBytes: flags['memory-budget'] === undefined ? undefined : flags['memory-budget'] * 2 ** 20,
    indexTtlMs: flags['index-ttl'],
    warmUp: flags['warm-up'],
    limits: { maxBodyBytes: flags['max-body'], maxBatch: flags['max-batch'], maxElements: flags['max-elements'], maxInFlight: flags['max-in-flight'], maxImagePixels: flags['max-image-pixels'] },
    watch: flags.watch,
    leaseMs: flags.lease,
    workers: flags.workers ?? availableParallelism(),
    maxUploadBytes: flags['max-upload'],
    batching:
      (flags['batch-max-size'] ?? 1) > 1
        ? { maxBatchSize: flags['batch-max-size']!, batchTimeoutMicros: flags['batch-timeout-us'] ?? DEFAULT_BATCH_TIMEOUT_MICROS, maxEnqueuedBatches: flags['batch-max-enqueued'] ?? 0 }
        : undefined,
  }));
export type ServeOptions = z.output<typeof ServeFlags>;

export function parseServeFlags(values: Record<string, unknown>): ServeOptions {
  const parsed = ServeFlags.safeParse(values);
  if (!parsed.success) throw new EdgeflowError('bad_request', parsed.error.issues[0]!.message);
  return parsed.data;
}
