// Micro-batching of one loaded model version, with TF Serving's knobs: concurrent requests whose
// inputs have the same dtype and non-batch shape wait up to `batchTimeoutMicros` for others and
// run as one batch of at most `maxBatchSize` rows (a request's own rows count), then each gets
// its own rows back. A merged run that fails, or whose outputs do not keep the batch axis, is
// run again request by request, so an error reaches only the requests it belongs to.
//
// Workers: no promise crosses requests. A batch runs in the context of the request that filled
// it or whose deadline came first, and leaves every request's outcome in plain state; each
// waiting request resumes only on its own timer (its deadline, then every POLL_MS while its
// batch runs elsewhere) and reads its outcome there. Resolving another request's promise instead
// was seen to fail in workerd at c=32: requests cancelled as hung, and "Cannot perform I/O on
// behalf of a different request".
import { EdgeflowError, unavailable } from '../../shared/errors.ts';
import type { LoadedModel } from '../../shared/model-loader.ts';
import { batchKey, concatInputs, hasBatchAxis, requestRows, splitOutputs } from './batch-tensors.ts';
import { predictOnce, type InputTensor, type OutputTensor } from './predict.ts';

export interface BatchingOptions {
  /** Most rows in one merged run (TF Serving max_batch_size); requests this large run alone. */
  maxBatchSize: number;
  /** Longest a request waits for others before a partial batch runs (TF Serving batch_timeout_micros). */
  batchTimeoutMicros: number;
  /** Batches waiting per model version before requests are refused with 503 (max_enqueued_batches); 0: no limit. */
  maxEnqueuedBatches: number;
}

/** What the batchers of one runtime did (reported by ModelRuntime.stats()). */
export interface BatchCounts {
  /** Model runs made for waiting requests: merged batches and requests run alone. */
  runs: number;
  /** Runs that merged two or more requests, and the requests they answered. */
  mergedRuns: number;
  mergedRequests: number;
  /** Requests run again alone after their merged run failed or lost the batch axis. */
  reruns: number;
}

export const noBatchCounts = (): BatchCounts => ({ runs: 0, mergedRuns: 0, mergedRequests: 0, reruns: 0 });

/** How often a request whose batch runs in another request's context looks for its outcome. */
const POLL_MS = 1;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Waiting {
  inputs: InputTensor[];
  rows: number;
  /** Taken out of the queue into a batch. */
  taken: boolean;
  outcome?: { outputs: OutputTensor[] } | { error: unknown };
}

interface Queue {
  items: Waiting[];
  rows: number;
}

export class Batcher {
  private readonly queues = new Map<string, Queue>();
  /** Set when a merged run's outputs lost the batch axis: this model runs every request alone. */
  private unbatchable = false;

  constructor(
    private readonly model: LoadedModel,
    readonly options: BatchingOptions,
    private readonly counts: BatchCounts = noBatchCounts(),
  ) {}

  /** The request's outputs, exactly those of predictOnce(model, inputs). */
  async run(inputs: InputTensor[]): Promise<OutputTensor[]> {
    const rows = requestRows(inputs);
    if (rows === null || rows >= this.options.maxBatchSize || this.unbatchable) return predictOnce(this.model, inputs);
    const key = batchKey(inputs);
    this.checkRoom(key, rows);
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = { items: [], rows: 0 }));
    const item: Waiting = { inputs, rows, taken: false };
    queue.items.push(item);
    queue.rows += rows;
    if (queue.rows >= this.options.maxBatchSize) await this.flush(key, false);
    let wait = this.options.batchTimeoutMicros / 1000;
    while (!item.outcome) {
      // This request's own timer: the batch's deadline, then polls while it runs elsewhere.
      await sleep(wait);
      wait = POLL_MS;
      if (!item.outcome && !item.taken) await this.flush(key, true);
    }
    if ('error' in item.outcome) throw item.outcome.error;
    return item.outcome.outputs;
  }

  /** Refuses (503) a request that would take the batches waiting past maxEnqueuedBatches. */
  private checkRoom(key: string, rows: number): void {
    const { maxEnqueuedBatches: limit, maxBatchSize: size } = this.options;
    if (limit <= 0) return;
    let batches = 0;
    for (const [k, queue] of this.queues) if (k !== key) batches += Math.ceil(queue.rows / size);
    batches += Math.ceil(((this.queues.get(key)?.rows ?? 0) + rows) / size);
    if (batches > limit) throw unavailable(`the model's batch queue is full (${limit} batches of up to ${size} rows waiting); retry in a moment`);
  }

  /** Runs the key's full batches (all of its requests when `all`: a deadline passed), in this request's context. */
  private flush(key: string, all: boolean): Promise<unknown> {
    const queue = this.queues.get(key);
    const runs: Promise<void>[] = [];
    if (!queue) return Promise.resolve();
    while (queue.items.length > 0 && (all || queue.rows >= this.options.maxBatchSize)) {
      const batch: Waiting[] = [];
      let rows = 0;
      while (queue.items.length > 0 && rows + queue.items[0]!.rows <= this.options.maxBatchSize) {
        const item = queue.items.shift()!;
        item.taken = true;
        rows += item.rows;
        batch.push(item);
      }
      queue.rows -= rows;
      runs.push(this.runBatch(batch));
    }
    if (queue.items.length === 0) this.queues.delete(key);
    return Promise.all(runs);
  }

  private async runBatch(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return this.runAlone(batch[0]!);
    let parts: OutputTensor[][] | null = null;
    this.counts.runs++;
    try {
      const outputs = await predictOnce(this.model, concatInputs(batch.map((item) => item.inputs)));
      parts = splitOutputs(
        outputs,
        batch.map((item) => item.rows),
      );
      if (!parts) this.unbatchable = true;
    } catch {
      // Which request made the merged run fail is found by running each alone.
    }
    if (!parts) {
      this.counts.reruns += batch.length;
      for (const item of batch) await this.runAlone(item);
      return;
    }
    this.counts.mergedRuns++;
    this.counts.mergedRequests += batch.length;
    batch.forEach((item, i) => settle(item, parts[i]!));
  }

  private async runAlone(item: Waiting): Promise<void> {
    this.counts.runs++;
    try {
      settle(item, await predictOnce(this.model, item.inputs));
    } catch (error) {
      settle(item, undefined, error);
    }
  }
}

function settle(item: Waiting, outputs: OutputTensor[] | undefined, error?: unknown): void {
  item.outcome ??= outputs ? { outputs } : { error: error instanceof Error ? error : new EdgeflowError('backend', String(error)) };
}

const batchers = new WeakMap<LoadedModel, Batcher>();

/** Gives the model a batcher (the runtime does, at load) when it has a batch axis to merge along. */
export function attachBatcher(model: LoadedModel, options: BatchingOptions, counts?: BatchCounts): void {
  if (options.maxBatchSize > 1 && hasBatchAxis(model)) batchers.set(model, new Batcher(model, options, counts));
}

export function batcherOf(model: LoadedModel): Batcher | undefined {
  return batchers.get(model);
}
