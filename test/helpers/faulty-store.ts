// A store wrapper that fails on purpose: the Nth write (or every write matching a key pattern)
// throws, so tests can prove that a publish interrupted at any step leaves nothing half-visible.
import type { ObjectStore, PutOptions } from '../../shared/store/types.ts';

export class InjectedFault extends Error {
  constructor(key: string) {
    super(`injected fault writing ${key}`);
    this.name = 'InjectedFault';
  }
}

export class FaultyStore implements ObjectStore {
  readonly description: string;
  /** Keys of every successful write, in order. */
  readonly writes: string[] = [];
  private putCount = 0;

  constructor(
    private readonly inner: ObjectStore,
    /** Fail the put with this 1-based index (counting attempts), or puts whose key matches. */
    private failOn: number | RegExp | undefined,
  ) {
    this.description = `faulty(${inner.description})`;
  }

  heal(): void {
    this.failOn = undefined;
  }

  get: ObjectStore['get'] = (key, range) => this.inner.get(key, range);
  head: ObjectStore['head'] = (key) => this.inner.head(key);
  list: ObjectStore['list'] = (prefix, options) => this.inner.list(prefix, options);
  delete: ObjectStore['delete'] = (key) => this.inner.delete(key);

  async put(key: string, body: Uint8Array | string, options?: PutOptions) {
    this.putCount++;
    if (typeof this.failOn === 'number' ? this.putCount === this.failOn : this.failOn?.test(key)) throw new InjectedFault(key);
    const info = await this.inner.put(key, body, options);
    this.writes.push(key);
    return info;
  }
}
