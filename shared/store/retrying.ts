// An ObjectStore wrapper that retries transient failures (network, 5xx, throttling) with
// exponential backoff and jitter. A failed condition (PreconditionFailedError) or an invalid
// key is an answer, not a failure: those pass through at once.
import { sleep } from '../bytes.ts';
import { InvalidKeyError, PreconditionFailedError, type ObjectStore } from './types.ts';

export const DEFAULT_RETRY_DELAYS_MS = [100, 400, 1600];

export class RetryingStore implements ObjectStore {
  readonly description: string;

  constructor(
    readonly inner: ObjectStore,
    private readonly delaysMs: readonly number[] = DEFAULT_RETRY_DELAYS_MS,
    private readonly onRetry?: (operation: string, key: string, error: Error, attempt: number) => void,
  ) {
    this.description = inner.description;
  }

  private async attempt<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (error instanceof PreconditionFailedError || error instanceof InvalidKeyError || attempt >= this.delaysMs.length) throw error;
        this.onRetry?.(operation, key, error as Error, attempt + 1);
        await sleep(this.delaysMs[attempt]! * (0.75 + Math.random() / 2));
      }
    }
  }

  get: ObjectStore['get'] = (key, range) => this.attempt('get', key, () => this.inner.get(key, range));
  head: ObjectStore['head'] = (key) => this.attempt('head', key, () => this.inner.head(key));
  put: ObjectStore['put'] = (key, body, options) => this.attempt('put', key, () => this.inner.put(key, body, options));
  list: ObjectStore['list'] = (prefix, options) => this.attempt('list', prefix, () => this.inner.list(prefix, options));
  delete: ObjectStore['delete'] = (key) => this.attempt('delete', key, () => this.inner.delete(key));
}
