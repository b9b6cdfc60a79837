// Per-isolate cache of loaded models, with a memory budget. Its rules:
// - Reference counts: acquire() counts the caller as a holder before it returns, with no await
//   between finding (or creating) the entry and counting; release() uncounts. A model with
//   holders is never disposed: one taken out of the cache while held is disposed on its last
//   release. A disposed model is never handed out.
// - One load per model at a time: a request that finds a model loading waits for it by polling
//   plain state on its own timers (wait.ts), never by awaiting the loading request's promise
//   (Workers forbid awaiting another request's I/O). The loaded entry is created already counting
//   one reference per waiter, so nothing can evict it before they wake. A failed load is not
//   cached: its waiters get its error, the next request loads again; the failure is kept for
//   status reports only.
// - The budget holds at all times: loads evict idle models (least recently used first) to make
//   room, and whenever a model becomes idle while the cache is over budget, idle models go at
//   once. Models in use can hold the cache over budget until they are released.
import type { LoadedModel } from '../../shared/model-loader.ts';
import type { LoadedVersion, LoadTimings } from './loader.ts';
import { pollUntil } from './wait.ts';

export interface CachedModel {
  key: string;
  model: LoadedModel;
  bytes: number;
  timings: LoadTimings;
  lastUsed: number;
  uses: number;
  /** Holders: acquisitions not yet released, including waiters' references not yet claimed. */
  refs: number;
  /** Out of the cache; disposed on its last release. */
  evicted: boolean;
  disposed: boolean;
}

export interface CacheStats {
  budgetBytes: number;
  /** Float32 weight bytes held: cached models, evicted ones still in use, and loads under way. */
  bytes: number;
  models: { key: string; bytes: number; uses: number; holders: number; loadMs: number; timings: LoadTimings; lastUsed: string }[];
  loading: string[];
  failures: { key: string; error: string; at: string }[];
  evictions: number;
}

export interface ModelCacheOptions {
  /** A load running longer than this is presumed dead (its request was cancelled): a waiter takes over. */
  loadWaitMs?: number;
  /** References made for waiters that have not claimed them after this long are presumed dead. */
  claimGraceMs?: number;
}

/** A load under way: plain state its waiters poll. */
interface Loading {
  key: string;
  bytes: number;
  startedAt: number;
  /** Requests waiting; the entry is created with one reference for each. */
  waiters: number;
  entry?: CachedModel;
  error?: unknown;
  /** A waiter gave up on it and loads again; its result, if any, goes to its own request only. */
  abandoned?: boolean;
  /** Waiters' references dropped (unclaimed too long): a late waiter looks again. */
  voided?: boolean;
}

interface Claims {
  loading: Loading;
  /** Waiters' references not yet claimed. */
  unclaimed: number;
  until: number;
}

/** A model too large for the budget even with everything else evicted. */
class OverBudgetError extends Error {}

export class ModelCache {
  /** Cached models in least recently used order (Map order). */
  private readonly entries = new Map<string, CachedModel>();
  private readonly loads = new Map<string, Loading>();
  /** Evicted while held: disposed on their last release. */
  private readonly draining = new Set<CachedModel>();
  private readonly claims = new Map<CachedModel, Claims>();
  private readonly failures = new Map<string, { error: string; at: number }>();
  private readonly loadWaitMs: number;
  private readonly claimGraceMs: number;
  private evictions = 0;

  constructor(
    readonly budgetBytes: number,
    options: ModelCacheOptions = {},
  ) {
    this.loadWaitMs = options.loadWaitMs ?? 20_000;
    this.claimGraceMs = options.claimGraceMs ?? 30_000;
  }

  /** The cached model, or the one load of it; counted as held before it returns: release() it once. */
  async acquire(key: string, bytes: number, load: () => Promise<LoadedVersion>): Promise<CachedModel> {
    for (;;) {
      const hit = this.entries.get(key);
      if (hit) return this.hold(hit, 1);
      const loading = this.loads.get(key);
      if (!loading) return this.load(key, bytes, load);
      const waited = await this.wait(loading);
      if (waited) return waited;
    }
  }

  release(entry: CachedModel): void {
    if (entry.refs <= 0) return;
    entry.refs--;
    if (entry.refs > 0) return;
    if (entry.evicted) this.dispose(entry);
    else this.enforceBudget();
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** A load under way (one past loadWaitMs is presumed dead: the next request for it takes over). */
  isLoading(key: string): boolean {
    const loading = this.loads.get(key);
    return loading !== undefined && !this.isDead(loading);
  }

  private isDead(loading: Loading): boolean {
    return Date.now() - loading.startedAt > this.loadWaitMs;
  }

  lastFailure(key: string): string | undefined {
    return this.failures.get(key)?.error;
  }

  stats(): CacheStats {
    return {
      budgetBytes: this.budgetBytes,
      bytes: this.heldBytes(),
      models: [...this.entries.values()].map((e) => ({
        key: e.key,
        bytes: e.bytes,
        uses: e.uses,
        holders: e.refs,
        loadMs: Math.round(e.timings.fetchMs + e.timings.buildMs + e.timings.warmUpMs),
        timings: e.timings,
        lastUsed: new Date(e.lastUsed).toISOString(),
      })),
      loading: [...this.loads.keys()].filter((key) => this.isLoading(key)),
      failures: [...this.failures].map(([key, f]) => ({ key, error: f.error, at: new Date(f.at).toISOString() })),
      evictions: this.evictions,
    };
  }

  /** Counts `added` holders (0: a waiter claiming the reference made for it) and marks a use. */
  private hold(entry: CachedModel, added: number): CachedModel {
    if (entry.disposed) throw new Error(`internal: model ${entry.key} handed out after disposal`);
    entry.refs += added;
    entry.uses++;
    entry.lastUsed = Date.now();
    if (!entry.evicted) {
      // Map order is the LRU order: move to the end.
      this.entries.delete(entry.key);
      this.entries.set(entry.key, entry);
    }
    return entry;
  }

  /** Waits for another request's load on this request's timers; undefined: look again. */
  private async wait(loading: Loading): Promise<CachedModel | undefined> {
    loading.waiters++;
    return pollUntil<{ entry?: CachedModel }>(() => {
      if (loading.error !== undefined) throw loading.error;
      if (loading.abandoned || loading.voided) return {};
      if (loading.entry) return { entry: this.claim(loading.entry) };
      if (this.isDead(loading)) {
        loading.abandoned = true;
        if (this.loads.get(loading.key) === loading) this.loads.delete(loading.key);
        return {};
      }
      return undefined;
    }).then((found) => found.entry);
  }

  private claim(entry: CachedModel): CachedModel {
    const claims = this.claims.get(entry)!;
    if (--claims.unclaimed === 0) this.claims.delete(entry);
    return this.hold(entry, 0);
  }

  private async load(key: string, bytes: number, load: () => Promise<LoadedVersion>): Promise<CachedModel> {
    if (bytes > this.budgetBytes) {
      const error = new OverBudgetError(`needs ${mib(bytes)} MiB of weights, more than this isolate's model memory budget of ${mib(this.budgetBytes)} MiB`);
      this.failures.set(key, { error: error.message, at: Date.now() });
      throw error;
    }
    const loading: Loading = { key, bytes, startedAt: Date.now(), waiters: 0 };
    this.loads.set(key, loading);
    this.enforceBudget();
    let loaded: LoadedVersion;
    try {
      loaded = await load();
    } catch (error) {
      loading.error = error;
      if (this.loads.get(key) === loading) this.loads.delete(key);
      this.failures.set(key, { error: (error as Error).message, at: Date.now() });
      throw error;
    }
    if (this.loads.get(key) === loading) this.loads.delete(key);
    const waiters = loading.abandoned ? 0 : loading.waiters;
    const entry: CachedModel = { key, model: loaded.model, bytes, timings: loaded.timings, lastUsed: Date.now(), uses: 0, refs: 1 + waiters, evicted: false, disposed: false };
    this.failures.delete(key);
    if (loading.abandoned || this.entries.has(key)) {
      // Given up on by its waiters (who loaded it again): this request's alone.
      entry.evicted = true;
      this.draining.add(entry);
      return this.hold(entry, 0);
    }
    this.entries.set(key, entry);
    if (waiters > 0) this.claims.set(entry, { loading, unclaimed: waiters, until: Date.now() + this.claimGraceMs });
    loading.entry = entry;
    this.enforceBudget();
    return this.hold(entry, 0);
  }

  private heldBytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.bytes;
    for (const entry of this.draining) total += entry.bytes;
    for (const loading of this.loads.values()) total += loading.bytes;
    return total;
  }

  /** Evicts idle models, least recently used first, until what is held fits the budget. */
  private enforceBudget(): void {
    for (const entry of [...this.entries.values()]) {
      if (this.heldBytes() <= this.budgetBytes) return;
      this.dropStaleClaims(entry);
      if (entry.refs > 0) continue;
      this.entries.delete(entry.key);
      this.evictions++;
      this.dispose(entry);
    }
  }

  /** Waiters' references never claimed within the grace: their requests are gone (cancelled). */
  private dropStaleClaims(entry: CachedModel): void {
    const claims = this.claims.get(entry);
    if (!claims || Date.now() < claims.until) return;
    entry.refs -= claims.unclaimed;
    claims.loading.voided = true;
    this.claims.delete(entry);
  }

  private dispose(entry: CachedModel): void {
    this.draining.delete(entry);
    if (entry.disposed) return;
    entry.evicted = true;
    entry.disposed = true;
    entry.model.dispose();
  }
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
