// The runtime shares no promise across requests (Workers forbid awaiting I/O another request
// started): the registry caches values and a request with no fresh one reads its own; a request
// whose body fails still waits for the load it started (its work would die with its response in
// Workers); the backend starts once while other requests wait on their own timers.
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { Backend } from '../../functions/runtime/backend.ts';
import { startNodeBackend } from '../../functions/runtime/backend-node.ts';
import { ModelRegistry } from '../../functions/runtime/registry.ts';
import { ModelRuntime } from '../../functions/runtime/runtime.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

/** A store whose reads of matching keys wait until the test opens them; counts reads per key. */
class GatedStore implements ObjectStore {
  readonly description = 'gated(memory)';
  readonly reads = new Map<string, number>();
  private gate: { pattern: RegExp; opened: Promise<void>; open: () => void } | null = null;
  /** The next read of a matching key throws. */
  failNext: RegExp | null = null;

  constructor(private readonly inner: MemoryStore) {}

  hold(pattern: RegExp): () => void {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.gate = { pattern, opened, open };
    return () => {
      this.gate = null;
      open();
    };
  }

  get: ObjectStore['get'] = async (key, range) => {
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    if (this.failNext?.test(key)) {
      this.failNext = null;
      throw new Error('connection reset');
    }
    if (this.gate?.pattern.test(key)) await this.gate.opened;
    return this.inner.get(key, range);
  };
  head: ObjectStore['head'] = (key) => this.inner.head(key);
  list: ObjectStore['list'] = (prefix, options) => this.inner.list(prefix, options);
  delete: ObjectStore['delete'] = (key) => this.inner.delete(key);
  put: ObjectStore['put'] = (key, body, options) => this.inner.put(key, body, options);
}

const memory = new MemoryStore();

beforeAll(async () => {
  await useNodeBackend();
  await convertAndPublish(memory, await tinyDenseModel(), { name: 'tiny', quantize: 'none', samples: 1 });
});

const pending = async (promise: Promise<unknown>, ms = 30): Promise<boolean> => {
  const marker = Symbol('pending');
  const result = await Promise.race([
    promise.then(
      () => null,
      () => null,
    ),
    new Promise((resolve) => setTimeout(() => resolve(marker), ms)),
  ]);
  return result === marker;
};

describe('ModelRegistry: values, never shared reads', () => {
  it('concurrent requests with no fresh index.json each read it; a failed read is not kept', async () => {
    const store = new GatedStore(memory);
    const registry = new ModelRegistry(store, 60_000);
    const open = store.hold(/index\.json$/);
    const reads = [registry.index('tiny'), registry.index('tiny')];
    await pending(Promise.all(reads));
    expect(store.reads.get('models/tiny/index.json')).toBe(2);
    open();
    const [first, second] = await Promise.all(reads);
    expect(first!.versions.map((v) => v.version)).toEqual([1]);
    expect(second).toEqual(first);
    // Fresh now: a third request reads nothing.
    await registry.index('tiny');
    expect(store.reads.get('models/tiny/index.json')).toBe(2);
    // A failed read: 503 naming the cause, and nothing kept.
    const failing = new GatedStore(memory);
    const other = new ModelRegistry(failing, 60_000);
    failing.failNext = /index\.json$/;
    await expect(other.index('tiny')).rejects.toMatchObject({ code: 'unavailable', message: expect.stringContaining('connection reset') });
    expect((await other.index('tiny')).versions).toHaveLength(1);
    expect(failing.reads.get('models/tiny/index.json')).toBe(2);
  });

  it('a read under way when invalidate() is called does not put its older value back', async () => {
    const store = new GatedStore(memory);
    const registry = new ModelRegistry(store, 60_000);
    const open = store.hold(/index\.json$/);
    const before = registry.index('tiny');
    await pending(before);
    registry.invalidate('tiny');
    open();
    await before;
    await registry.index('tiny');
    expect(store.reads.get('models/tiny/index.json')).toBe(2);
  });
});

describe('ModelRuntime.acquireWhile', () => {
  it('a request whose body fails waits for the load it started: the model ends cached, idle, not LOADING', async () => {
    const store = new GatedStore(memory);
    const runtime = new ModelRuntime({ store, backend: startNodeBackend });
    const open = store.hold(/\.bin$/);
    const answer = runtime.acquireWhile('tiny', {}, async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error('body: not JSON');
    });
    expect(await pending(answer, 100)).toBe(true); // the body failed, the load is still under way
    expect(runtime.versionState('tiny', 1)).toEqual({ state: 'LOADING' });
    open();
    await expect(answer).rejects.toThrow('body: not JSON');
    expect(runtime.versionState('tiny', 1)).toEqual({ state: 'AVAILABLE' });
    expect(runtime.isLoaded('tiny', 1)).toBe(true);
    expect(runtime.stats().models).toMatchObject([{ key: 'tiny/1', holders: 0 }]);
    // The next request finds it loaded: no shard read again.
    const shardReads = [...store.reads].filter(([key]) => key.endsWith('.bin')).reduce((sum, [, n]) => sum + n, 0);
    const acquired = await runtime.acquire('tiny');
    acquired.release();
    acquired.release(); // a second release of the same acquisition changes nothing
    expect(runtime.stats().models).toMatchObject([{ key: 'tiny/1', holders: 0 }]);
    expect([...store.reads].filter(([key]) => key.endsWith('.bin')).reduce((sum, [, n]) => sum + n, 0)).toBe(shardReads);
  });
});

describe('Backend', () => {
  it('starts once while other requests wait on their own timers; a failed start is told to all and retried later', async () => {
    let starts = 0;
    let finish!: (ok: boolean) => void;
    const backend = new Backend(async () => {
      starts++;
      const ok = await new Promise<boolean>((resolve) => (finish = resolve));
      if (!ok) throw new Error('no wasm today');
      return { backend: 'wasm', simd: true, threads: false, binary: 'test.wasm' };
    });
    const failing = [backend.ensure(), backend.ensure(), backend.ensure()];
    await pending(Promise.all(failing));
    expect(starts).toBe(1);
    finish(false);
    for (const attempt of failing) await expect(attempt).rejects.toThrow('backend failed to start: no wasm today');
    const retried = [backend.ensure(), backend.ensure()];
    await pending(Promise.all(retried));
    expect(starts).toBe(2);
    finish(true);
    await Promise.all(retried);
    expect(backend.status()).toMatchObject({ ready: true, backend: 'wasm' });
    await backend.ensure();
    expect(starts).toBe(2);
  });
});
