// Node only: a conversion run apart from serving, in a worker_threads Worker with resource
// limits, so no upload can stall predictions (the event loop stays free) or take the process
// down (a worker past its heap limit dies alone), at a lower CPU priority than serving (nice
// CONVERSION_NICENESS on its thread, Linux). The main side (isolatedConverter) posts the
// decoded model and rebuilds the outcome; the worker side (serveConversion, started by the entry
// cli/convert-worker.mjs) runs convertModel. A worker killed by its memory limit is a permanent
// `unconvertible` failure naming the limit. Not imported by the Workers bundle (node:worker_threads).
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, Worker } from 'node:worker_threads';
import { ConversionError, EdgeflowError, type ErrorCode } from '../shared/errors.ts';
import { resolveConversionOptions } from '../shared/options/conversion.ts';
import type { AccuracyReport } from '../shared/schemas/edgeflow-json.ts';
import { convertModel, ToleranceError, type ConvertOptions, type ConvertProgress, type ConvertResult } from './convert.ts';
import { DEFAULT_WORKER_HEAP_MB } from './limits.ts';
import type { DecodedModel } from './model.ts';

/** What the consumer calls to convert (convertModel in-process, or this module's isolated one). */
export type Converter = (input: DecodedModel, options: ConvertOptions) => Promise<ConvertResult>;

type Request = { input: DecodedModel; options: Omit<ConvertOptions, 'onProgress' | 'calibration' | 'pause'> };
type Reply =
  | { kind: 'progress'; progress: ConvertProgress }
  | { kind: 'done'; result: ConvertResult }
  | { kind: 'error'; code?: ErrorCode; message: string; details?: Record<string, unknown>; tolerance?: { report: AccuracyReport; quantize: string } };

export interface IsolationOptions {
  /** The worker's entry (cli/convert-worker.mjs, which loads cli/convert-worker.ts through tsx). */
  workerUrl: URL;
  /** V8 old-generation heap of the worker (default DEFAULT_WORKER_HEAP_MB). Typed arrays and the wasm heap live outside it: the budgets of limits.ts bound those. */
  maxOldGenerationSizeMb?: number;
}

/** Rebuilds an error the worker sent as the domain error it was. */
function rebuild(reply: Extract<Reply, { kind: 'error' }>): Error {
  if (reply.tolerance) return new ToleranceError(reply.tolerance.report, reply.tolerance.quantize);
  if (reply.code) return new EdgeflowError(reply.code, reply.message, reply.details);
  return new Error(reply.message);
}

/** A Converter that runs each conversion in a fresh Worker with a heap limit. */
export function isolatedConverter(isolation: IsolationOptions): Converter {
  const heapMb = isolation.maxOldGenerationSizeMb ?? DEFAULT_WORKER_HEAP_MB;
  // A pause is not sent (functions do not cross threads, and the worker thread has no one to yield to).
  return (input, { onProgress, calibration: _calibration, pause: _pause, ...options }) =>
    new Promise<ConvertResult>((resolve, reject) => {
      const worker = new Worker(isolation.workerUrl, {
        resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: Math.max(16, heapMb >> 4) },
        stderr: false,
      });
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        outcome();
        void worker.terminate();
      };
      worker.on('message', (reply: Reply) => {
        if (reply.kind === 'progress') onProgress?.(reply.progress);
        else if (reply.kind === 'done') settle(() => resolve(reply.result));
        else settle(() => reject(rebuild(reply)));
      });
      worker.on('error', (error: Error & { code?: string }) =>
        settle(() =>
          reject(
            error.code === 'ERR_WORKER_OUT_OF_MEMORY'
              ? new ConversionError(`the conversion ran out of its ${heapMb} MiB heap limit (the worker's maxOldGenerationSizeMb) and was stopped: the model is too large or hostile`)
              : new Error(`the conversion worker failed: ${error.message}`),
          ),
        ),
      );
      worker.on('exit', (code) => settle(() => reject(new Error(`the conversion worker exited with code ${code} before it finished`))));
      worker.postMessage({ input, options } satisfies Request);
    });
}

/** Niceness of a conversion's thread: on a busy machine the serving thread gets the CPU first. */
export const CONVERSION_NICENESS = 10;

/**
 * Lowers this thread's CPU priority (Linux: setpriority on the thread's id, read from
 * /proc/thread-self, applies to this thread alone); elsewhere nothing happens.
 */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, CONVERSION_NICENESS);
  } catch {
    // not Linux, or not permitted: the conversion runs at the process's priority
  }
}

/** The worker side: converts the one model it is sent with the backend ensureBackend starts, at a lower CPU priority, and replies. */
export function serveConversion(ensureBackend: () => Promise<unknown>): void {
  const port = parentPort;
  if (!port) throw new Error('serveConversion runs in a worker thread');
  lowerThreadPriority();
  port.once('message', async ({ input, options }: Request) => {
    const reply = (message: Reply) => port.postMessage(message);
    try {
      await ensureBackend();
      const result = await convertModel(input, { ...options, onProgress: (progress) => reply({ kind: 'progress', progress }) });
      reply({ kind: 'done', result });
    } catch (error) {
      const e = error as Error;
      reply({
        kind: 'error',
        message: e.message,
        ...(error instanceof EdgeflowError ? { code: error.code, details: error.details } : {}),
        ...(error instanceof ToleranceError ? { tolerance: { report: error.report, quantize: resolveConversionOptions(options).quantize } } : {}),
      });
    }
  });
}
