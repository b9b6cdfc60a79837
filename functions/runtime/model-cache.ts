// Per-isolate cache of loaded models: concurrent first requests share one load, a failed
// load is not cached (the next request tries again; the failure is remembered only for
// status reports), and a memory budget evicts the least recently used models (disposing
// them) once loads would exceed it. Models in use by a request are never evicted.
import type { LoadedModel } from '../../shared/model-loader.ts';
import type { LoadedVersion, LoadTimings } from './loader.ts';

export interface CachedModel {
  key: string;
  model: LoadedModel;
  bytes: number;
  timings: LoadTimings;
  lastUsed: number;
  uses: number;
  inUse: number;
}

export interface CacheStats {
  budgetBytes: number;
  bytes: number;
  models: { key: string; bytes: number; uses: number; loadMs: number; timings: LoadTimings; lastUsed: string }[];
  loading: string[];
  failures: { key: string; error: string; at: string }[];
  evictions: number;
}

/** A model too large for the budget even with everything else evicted. */
class OverBudgetError extends Error {}

export class ModelCache {
  private readonly entries = new Map<string, CachedModel>();
  private readonly inflight = new Map<string, Promise<CachedModel>>();
  private readonly failures = new Map<string, { error: string; at: number }>();
  private evictions = 0;

  constructor(readonly budgetBytes: number) {}

  /** The cached model, or one shared load of it; the caller must release() it. */
  async acquire(key: string, bytes: number, load: () => Promise<LoadedVersion>): Promise<CachedModel> {
    const hit = this.entries.get(key);
    if (hit) return this.use(hit);
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.load(key, bytes, load);
      this.inflight.set(key, pending);
    }
    return this.use(await pending);
  }

  release(entry: CachedModel): void {
    entry.inUse = Math.max(0, entry.inUse - 1);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  isLoading(key: string): boolean {
    return this.inflight.has(key);
  }

  lastFailure(key: string): string | undefined {
    return this.failures.get(key)?.error;
  }

  stats(): CacheStats {
    return {
      budgetBytes: this.budgetBytes,
      bytes: this.totalBytes(),
      models: [...this.entries.values()].map((e) => ({
        key: e.key,
        bytes: e.bytes,
        uses: e.uses,
        loadMs: Math.round(e.timings.fetchMs + e.timings.buildMs + e.timings.warmUpMs),
        timings: e.timings,
        lastUsed: new Date(e.lastUsed).toISOString(),
      })),
      loading: [...this.inflight.keys()],
      failures: [...this.failures].map(([key, f]) => ({ key, error: f.error, at: new Date(f.at).toISOString() })),
      evictions: this.evictions,
    };
  }

  private use(entry: CachedModel): CachedModel {
    entry.inUse++;
    entry.uses++;
    entry.lastUsed = Date.now();
    // Map order is the LRU order: move to the end.
    this.entries.delete(entry.key);
    this.entries.set(entry.key, entry);
    return entry;
  }

  private totalBytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.bytes;
    return total;
  }

  /** Evicts least recently used idle models until `incoming` more bytes fit. */
  private makeRoom(incoming: number): void {
    for (const entry of [...this.entries.values()]) {
      if (this.totalBytes() + incoming <= this.budgetBytes) return;
      if (entry.inUse > 0) continue;
      this.entries.delete(entry.key);
      entry.model.dispose();
      this.evictions++;
    }
  }

  private async load(key: string, bytes: number, load: () => Promise<LoadedVersion>): Promise<CachedModel> {
    try {
      if (bytes > this.budgetBytes) {
        throw new OverBudgetError(`needs ${mib(bytes)} MiB of weights, more than this isolate's model memory budget of ${mib(this.budgetBytes)} MiB`);
      }
      this.makeRoom(bytes);
      const loaded = await load();
      const entry: CachedModel = { key, model: loaded.model, bytes, timings: loaded.timings, lastUsed: Date.now(), uses: 0, inUse: 0 };
      this.entries.set(key, entry);
      this.failures.delete(key);
      return entry;
    } catch (error) {
      this.failures.set(key, { error: (error as Error).message, at: Date.now() });
      throw error;
    } finally {
      this.inflight.delete(key);
    }
  }
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
