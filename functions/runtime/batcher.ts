// Micro-batching of one loaded model version, with TF Serving's knobs: concurrent requests whose
// inputs have the same dtype and non-batch shape wait up to `batchTimeoutMicros` for others and
// run as one batch of at most `maxBatchSize` rows (a request's own rows count), then each gets
// its own rows back. A merged run that fails, or whose outputs do not keep the batch axis, is
// run again request by request, so an error reaches only the requests it belongs to.
//
// Workers: a request waiting for a batch another request runs is resolved from that request's
// context, which workerd allows while the waiter is alive; a waiter with nothing of its own
// pending is cancelled as hung. So every waiting request holds a timer of its own (the batch
// deadline, then a keep-alive), and whichever request's timer fires first runs the batch.
// Nothing but plain state is shared; the run itself is pure compute.
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

export const DEFAULT_BATCH_TIMEOUT_MICROS = 1000;

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

/** A waiting request re-arms a timer this often while its batch runs (keeps it alive in workerd). */
const KEEP_ALIVE_MS = 50;

interface Waiting {
  inputs: InputTensor[];
  rows: number;
  resolve(outputs: OutputTensor[]): void;
  reject(error: unknown): void;
  /** Taken out of the queue into a batch. */
  taken: boolean;
  settled: boolean;
  /** The waiting request itself has resumed (in its own context): its timer may stop. */
  resumed: boolean;
  timer?: ReturnType<typeof setTimeout>;
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
    let item!: Waiting;
    const done = new Promise<OutputTensor[]>((resolve, reject) => {
      item = { inputs, rows, resolve, reject, taken: false, settled: false, resumed: false };
    });
    queue.items.push(item);
    queue.rows += rows;
    // Re-armed until this request has resumed, not merely until another request settled it: in
    // workerd a request whose only timer fired while its continuation was still being handed over
    // from the settling request's context was cancelled as hung (seen at c=32).
    const onTimer = () => {
      if (item.resumed) return;
      if (!item.taken) this.flush(key, true);
      item.timer = setTimeout(onTimer, KEEP_ALIVE_MS);
    };
    item.timer = setTimeout(onTimer, this.options.batchTimeoutMicros / 1000);
    if (queue.rows >= this.options.maxBatchSize) this.flush(key, false);
    try {
      return await done;
    } finally {
      // Here, in this request's own context.
      item.resumed = true;
      clearTimeout(item.timer);
    }
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

  /** Runs the key's full batches (all of its requests when `all`: a deadline passed). */
  private flush(key: string, all: boolean): void {
    const queue = this.queues.get(key);
    if (!queue) return;
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
      void this.runBatch(batch);
    }
    if (queue.items.length === 0) this.queues.delete(key);
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
  if (item.settled) return;
  item.settled = true;
  if (outputs) item.resolve(outputs);
  else item.reject(error instanceof Error ? error : new EdgeflowError('backend', String(error)));
}

const batchers = new WeakMap<LoadedModel, Batcher>();

/** Gives the model a batcher (the runtime does, at load) when it has a batch axis to merge along. */
export function attachBatcher(model: LoadedModel, options: BatchingOptions, counts?: BatchCounts): void {
  if (options.maxBatchSize > 1 && hasBatchAxis(model)) batchers.set(model, new Batcher(model, options, counts));
}

export function batcherOf(model: LoadedModel): Batcher | undefined {
  return batchers.get(model);
}
