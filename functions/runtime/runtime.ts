// The model runtime of one isolate (Workers) or process (Node): the TF.js backend, the
// registry of published versions, and the cache of loaded models. Routes only talk to this.
import * as tf from '@tensorflow/tfjs-core';
import { keys } from '../../shared/names.ts';
import { DEFAULT_INDEX_TTL_MS, DEFAULT_MEMORY_BUDGET_BYTES } from '../../shared/options/serving.ts';
import type { ObjectStore, StoredObject } from '../../shared/store/types.ts';
import { Backend, type BackendStarter, type BackendStatus } from './backend.ts';
import { ConversionError, EdgeflowError, unavailable } from '../../shared/errors.ts';
import { attachBatcher, noBatchCounts, type BatchCounts, type BatchingOptions } from './batcher.ts';
import { loadVersion } from './loader.ts';
import { ModelCache, type CachedModel, type CacheStats } from './model-cache.ts';
import { ModelRegistry, type ResolvedVersion, type VersionSelector } from './registry.ts';

export interface RuntimeOptions {
  store: ObjectStore;
  backend: BackendStarter;
  /** Bytes of (float32) weights kept loaded; least recently used models are evicted beyond it. */
  memoryBudgetBytes?: number;
  /** How long a model's index.json (versions, labels) is trusted before it is read again. */
  indexTtlMs?: number;
  /**
   * When a load runs one warm-up prediction on zeros before the model is cached:
   * 'ready' (default) when the load comes from a readiness check (GET .../ready, the way to
   * preload), not when a prediction triggers it: that prediction is itself the first run, and
   * a separate warm-up would only double the cold start. 'always' or 'never' otherwise.
   */
  warmUp?: WarmUpPolicy;
  /** Micro-batching of concurrent requests to one model version (batcher.ts); absent: off. */
  batching?: BatchingOptions;
}

export type WarmUpPolicy = 'ready' | 'always' | 'never';
export type LoadPurpose = 'predict' | 'ready';

export type VersionState = 'AVAILABLE' | 'LOADING' | 'FAILED';

export interface AcquiredModel {
  resolved: ResolvedVersion;
  entry: CachedModel;
  /** Time this request spent waiting for the backend and the model (0 when cached). */
  loadMs: number;
  /** Gives the model back (call it in a finally); later calls do nothing. */
  release(): void;
}

export class ModelRuntime {
  readonly store: ObjectStore;
  readonly registry: ModelRegistry;
  readonly cache: ModelCache;
  private readonly backend: Backend;
  private readonly warmUp: WarmUpPolicy;
  private readonly batching: BatchingOptions | undefined;
  private readonly batchCounts = noBatchCounts();

  constructor(options: RuntimeOptions) {
    this.store = options.store;
    this.backend = new Backend(options.backend);
    this.registry = new ModelRegistry(options.store, options.indexTtlMs ?? DEFAULT_INDEX_TTL_MS);
    this.cache = new ModelCache(options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
    this.warmUp = options.warmUp ?? 'ready';
    this.batching = options.batching;
  }

  /** Starts the backend (once); 503 with the reason when it cannot start. */
  async ready(): Promise<BackendStatus> {
    await this.ensureBackend();
    return this.backend.status();
  }

  private async ensureBackend(): Promise<void> {
    try {
      await this.backend.ensure();
    } catch (error) {
      throw unavailable((error as Error).message);
    }
  }

  backendStatus(): BackendStatus {
    return this.backend.status();
  }

  resolve(name: string, selector: VersionSelector = {}): Promise<ResolvedVersion> {
    return this.registry.resolve(name, selector);
  }

  /**
   * The resolved version's model, loading it on first use. The caller must release() it.
   * On a cold path the backend starts, and model.json is fetched, while edgeflow.json is read.
   */
  async acquire(name: string, selector: VersionSelector = {}, purpose: LoadPurpose = 'predict'): Promise<AcquiredModel> {
    const start = performance.now();
    const backend = this.ensureBackend();
    backend.catch(() => undefined); // awaited below; a 404 may come first
    const { version, index } = await this.registry.resolveVersion(name, selector);
    const key = `${name}/${version}`;
    let modelJson: Promise<StoredObject | null> | undefined;
    if (!this.cache.has(key) && !this.cache.isLoading(key)) {
      modelJson = this.store.get(keys.versionFile(name, version, 'model.json'));
      modelJson.catch(() => undefined); // awaited by the loader
    }
    const edgeflow = await this.registry.edgeflow(name, version);
    await backend;
    const resolved: ResolvedVersion = { name, version, index, edgeflow };
    try {
      const entry = await this.cache.acquire(key, edgeflow.sizes.float32, async () => {
        const loaded = await loadVersion(this.store, name, version, edgeflow, { warmUp: this.warmUp === 'always' || (this.warmUp === 'ready' && purpose === 'ready'), modelJson });
        if (this.batching) attachBatcher(loaded.model, this.batching, this.batchCounts);
        return loaded;
      });
      const loadMs = performance.now() - start;
      let held = true;
      const release = () => {
        // Once per acquisition: a second call must not drop another holder's reference.
        if (held) this.cache.release(entry);
        held = false;
      };
      return { resolved, entry, loadMs, release };
    } catch (error) {
      // A stored version whose files cannot be built (a ConversionError reading them) is unavailable, not a bad request.
      if (error instanceof EdgeflowError && !(error instanceof ConversionError)) throw error;
      throw unavailable(`model ${name} version ${version} failed to load: ${(error as Error).message}`);
    }
  }

  /**
   * acquire(), started before read() (a request's body) so that a cold load overlaps the body's
   * upload. read()'s errors still come first, as if the body had been read before, but only once
   * the acquisition has settled: in Workers a request's work ends with its response, and a load
   * it started would die half-way, leaving other requests waiting for it.
   */
  async acquireWhile<T>(name: string, selector: VersionSelector, read: () => Promise<T>): Promise<[T, AcquiredModel]> {
    const acquiring = this.acquire(name, selector);
    acquiring.catch(() => undefined); // awaited below, after read()
    let value: T;
    try {
      value = await read();
    } catch (error) {
      await acquiring.then(
        (acquired) => acquired.release(),
        () => undefined,
      );
      throw error;
    }
    return [value, await acquiring];
  }

  /** Reads the model's index.json afresh on next use: labels moved or a version was added or deleted. */
  invalidate(name: string): void {
    this.registry.invalidate(name);
  }

  versionState(name: string, version: number): { state: VersionState; error?: string } {
    const key = `${name}/${version}`;
    if (this.cache.isLoading(key)) return { state: 'LOADING' };
    if (this.cache.has(key)) return { state: 'AVAILABLE' };
    const error = this.cache.lastFailure(key);
    return error ? { state: 'FAILED', error } : { state: 'AVAILABLE' };
  }

  isLoaded(name: string, version: number): boolean {
    return this.cache.has(`${name}/${version}`);
  }

  /**
   * Loaded models and their bytes, plus live TF.js tensors (flat under load when every request
   * disposes), and what micro-batching did (null when off).
   */
  stats(): CacheStats & { tensors: number; tensorBytes: number; wasmHeapBytes: number | null; batching: (BatchingOptions & BatchCounts) | null } {
    const batching = this.batching ? { ...this.batching, ...this.batchCounts } : null;
    if (!this.backend.status().ready) return { ...this.cache.stats(), tensors: 0, tensorBytes: 0, wasmHeapBytes: null, batching };
    const memory = tf.memory();
    // The wasm heap grows and never shrinks: its size is the high-water mark of this isolate.
    const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? null;
    return { ...this.cache.stats(), tensors: memory.numTensors, tensorBytes: memory.numBytes, wasmHeapBytes: heap, batching };
  }
}
