// The model cache's rules with real tiny TF.js models and loads gated by the test: a model in use
// is never disposed, a disposed one is never handed out, waiters hold references from the moment
// the loaded entry exists, a failed or dead load never stays cached, and the memory budget holds
// whenever nothing is in use.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { useNodeBackend } from '../../cli/backend.ts';
import { ModelCache, type CachedModel } from '../../functions/runtime/model-cache.ts';
import type { LoadedVersion } from '../../functions/runtime/loader.ts';
import { loadModel, type LoadedModel } from '../../shared/model-loader.ts';
import { ModelJson } from '../../shared/schemas/model-json.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';
import type { FileSet } from '../../converter/model.ts';

const TIMINGS = { fetchMs: 0, buildMs: 0, warmUpMs: 0 };
/** Bytes each model counts for; the budget holds one. */
const SIZE = 100;
const BUDGET = 150;

let files: FileSet;

beforeAll(async () => {
  await useNodeBackend();
  files = await tinyDenseModel();
});

afterEach(() => {
  vi.useRealTimers();
});

interface TrackedModel extends LoadedModel {
  disposed: boolean;
}

/** A real tiny model (Dense 16 → 32 → 4) that records its disposal. */
async function buildModel(): Promise<TrackedModel> {
  const modelJson = ModelJson.parse(JSON.parse(new TextDecoder().decode(files.get('model.json')!)));
  const model = await loadModel(modelJson, (path) => files.get(path)!);
  const tracked: TrackedModel = {
    ...model,
    disposed: false,
    dispose: () => {
      tracked.disposed = true;
      model.dispose();
    },
  };
  return tracked;
}

/** A load that waits for the test to open (or fail) it; counts its calls. */
function gatedLoad(model: TrackedModel) {
  let open!: () => void;
  let fail!: (error: Error) => void;
  const gate = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  const state = { calls: 0 };
  const load = async (): Promise<LoadedVersion> => {
    state.calls++;
    await gate;
    return { model, timings: TIMINGS };
  };
  return { load, open, fail, state };
}

const immediate = (model: TrackedModel) => async (): Promise<LoadedVersion> => ({ model, timings: TIMINGS });
const never = async (): Promise<LoadedVersion> => {
  throw new Error('this request must not load');
};

/** Runs the model: throws if it was disposed. */
async function predicts(entry: CachedModel): Promise<number[]> {
  expect((entry.model as TrackedModel).disposed).toBe(false);
  const input = tf.ones([1, 16]);
  const [output] = await entry.model.predict([input]);
  input.dispose();
  const values = Array.from(await output!.data());
  output!.dispose();
  return values;
}

/** Lets promise continuations (not timers) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ModelCache', () => {
  it('a load and its waiter: one load, both counted as holders from the moment the entry exists', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    const cache = new ModelCache(BUDGET);
    const a = await buildModel();
    const gate = gatedLoad(a);
    const first = cache.acquire('a', SIZE, gate.load);
    const second = cache.acquire('a', SIZE, never); // waits on its own timer
    expect(cache.isLoading('a')).toBe(true);
    gate.open();
    const loaded = await first;
    expect(gate.state.calls).toBe(1);
    expect(loaded.refs).toBe(2); // the loader and the waiter that has not woken yet
    cache.release(loaded);
    // Another model comes in while the waiter still sleeps (as a request resumes late in
    // workerd): 'a' must not be evicted, let alone disposed.
    const b = cache.acquire('b', SIZE, immediate(await buildModel()));
    const bEntry = await b;
    expect(a.disposed).toBe(false);
    expect(cache.has('a')).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    const waited = await second;
    expect(waited).toBe(loaded);
    expect(waited.refs).toBe(1);
    vi.useRealTimers();
    expect((await predicts(waited)).length).toBe(4);
    // Both in use: over budget until released; then the least recently used idle one goes at once.
    expect(cache.stats().bytes).toBe(2 * SIZE);
    cache.release(bEntry);
    cache.release(waited);
    expect(cache.stats().bytes).toBeLessThanOrEqual(BUDGET);
    expect(cache.has('a')).toBe(true); // used last
    expect(cache.has('b')).toBe(false);
    expect((bEntry.model as TrackedModel).disposed).toBe(true);
  });

  it('holds the budget whenever nothing is in use: models loaded side by side go once idle', async () => {
    const cache = new ModelCache(BUDGET);
    const held = [];
    for (const key of ['a', 'b', 'c']) held.push(await cache.acquire(key, SIZE, immediate(await buildModel())));
    // All three in use: none may be disposed even though the cache is over budget.
    expect(cache.stats().bytes).toBe(3 * SIZE);
    for (const entry of held) expect((await predicts(entry)).length).toBe(4);
    cache.release(held[0]!);
    expect((held[0]!.model as TrackedModel).disposed).toBe(true); // idle and least recent
    cache.release(held[2]!);
    expect(cache.has('c')).toBe(false); // idle, still over budget ('b' is in use)
    expect(cache.stats().bytes).toBe(SIZE);
    cache.release(held[1]!);
    expect(cache.stats()).toMatchObject({ bytes: SIZE, evictions: 2, loading: [] });
    expect(cache.has('b')).toBe(true);
    // Released twice: nothing changes (counts never go below zero).
    cache.release(held[1]!);
    expect(cache.has('b')).toBe(true);
    expect(held[1]!.refs).toBe(0);
  });

  it('a load evicts idle models before it starts, never one in use, and never hands out a disposed one', async () => {
    const cache = new ModelCache(BUDGET);
    const a = await cache.acquire('a', SIZE, immediate(await buildModel()));
    cache.release(a);
    const gate = gatedLoad(await buildModel());
    const b = cache.acquire('b', SIZE, gate.load);
    await settle();
    // 'a' was idle: evicted for the load under way.
    expect((a.model as TrackedModel).disposed).toBe(true);
    expect(cache.has('a')).toBe(false);
    gate.open();
    const bEntry = await b;
    // 'a' again while 'b' is held: a fresh model, and 'b' stays.
    const again = await cache.acquire('a', SIZE, immediate(await buildModel()));
    expect(again).not.toBe(a);
    expect((await predicts(again)).length).toBe(4);
    expect((await predicts(bEntry)).length).toBe(4);
    cache.release(again);
    cache.release(bEntry);
    expect(cache.stats().bytes).toBeLessThanOrEqual(BUDGET);
  });

  it('a failed load is not cached: its waiters get its error, the next request loads again', async () => {
    const cache = new ModelCache(BUDGET);
    const gate = gatedLoad(await buildModel());
    const first = cache.acquire('a', SIZE, gate.load);
    const second = cache.acquire('a', SIZE, never);
    gate.fail(new Error('shard 1 fails its sha256 check'));
    await expect(first).rejects.toThrow('shard 1 fails its sha256 check');
    await expect(second).rejects.toThrow('shard 1 fails its sha256 check');
    expect(cache.isLoading('a')).toBe(false);
    expect(cache.has('a')).toBe(false);
    expect(cache.lastFailure('a')).toBe('shard 1 fails its sha256 check');
    const entry = await cache.acquire('a', SIZE, immediate(await buildModel()));
    expect((await predicts(entry)).length).toBe(4);
    expect(cache.lastFailure('a')).toBeUndefined();
    cache.release(entry);
  });

  it('a load that never finishes (its request cancelled) does not leave the model LOADING: a waiter loads it again', async () => {
    const cache = new ModelCache(BUDGET, { loadWaitMs: 40 });
    const dead = gatedLoad(await buildModel());
    const stuck = cache.acquire('a', SIZE, dead.load); // never opened in time
    expect(cache.isLoading('a')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(cache.isLoading('a')).toBe(false); // presumed dead: not reported LOADING for ever
    const fresh = await buildModel();
    const waiter = await Promise.race([cache.acquire('a', SIZE, immediate(fresh)), new Promise<null>((resolve) => setTimeout(() => resolve(null), 2_000))]);
    expect(waiter, 'the waiter was still waiting after 2 s').not.toBeNull();
    expect(waiter!.model).toBe(fresh);
    expect(cache.isLoading('a')).toBe(false);
    expect((await predicts(waiter!)).length).toBe(4);
    // The dead load finishes after all: its model is its own request's alone, disposed on release.
    dead.open();
    const late = await stuck;
    expect(late).not.toBe(waiter);
    expect(cache.stats().models.map((m) => m.key)).toEqual(['a']);
    expect(cache.stats().bytes).toBe(2 * SIZE); // the cached one and the late one, both held
    expect((await predicts(late)).length).toBe(4);
    cache.release(late);
    expect((late.model as TrackedModel).disposed).toBe(true);
    expect(fresh.disposed).toBe(false);
    cache.release(waiter!);
    expect(cache.stats().bytes).toBe(SIZE);
  });

  it('a waiter that never wakes (its request cancelled) pins the model only for the claim grace; a late waiter loads again', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'Date'] });
    const cache = new ModelCache(BUDGET, { claimGraceMs: 1_000 });
    const a = await buildModel();
    const gate = gatedLoad(a);
    const first = cache.acquire('a', SIZE, gate.load);
    const asleep = cache.acquire('a', SIZE, immediate(await buildModel()));
    gate.open();
    const loaded = await first;
    cache.release(loaded);
    expect(loaded.refs).toBe(1); // the sleeping waiter's
    vi.setSystemTime(Date.now() + 5_000); // past the grace, without firing the waiter's timer
    const b = await cache.acquire('b', SIZE, immediate(await buildModel()));
    expect(a.disposed).toBe(true);
    expect(cache.has('a')).toBe(false);
    // The waiter wakes after all: it must not get the disposed model; it loads its own.
    await vi.advanceTimersByTimeAsync(10);
    const woke = await asleep;
    vi.useRealTimers();
    expect(woke.model).not.toBe(a);
    expect((await predicts(woke)).length).toBe(4);
    cache.release(woke);
    cache.release(b);
    expect(cache.stats().bytes).toBeLessThanOrEqual(BUDGET);
  });

  it('a model larger than the whole budget is refused with a clear reason and never LOADING', async () => {
    const cache = new ModelCache(BUDGET);
    await expect(cache.acquire('big', 2 ** 20, never)).rejects.toThrow(/needs 1\.0 MiB of weights, more than this isolate's model memory budget/);
    expect(cache.isLoading('big')).toBe(false);
    expect(cache.lastFailure('big')).toMatch(/more than this isolate's model memory budget/);
  });
});
