// Resolves a model name plus a version or label to a published version, reading
// models/<name>/index.json (cached briefly: labels move) and the version's edgeflow.json
// (cached for good: versions are immutable). The caches hold parsed values, never promises:
// in Workers a request may not await I/O another request started, so a request that finds no
// fresh value does its own read (index.json and edgeflow.json are small).
import { MODEL_NAME_PATTERN } from '../../shared/names.ts';
import { readIndex, readVersionMetadata } from '../../shared/bucket/published.ts';
import type { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { labelVersion, type IndexJson } from '../../shared/schemas/index-json.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { notFound, unavailable } from '../../shared/errors.ts';

export interface VersionSelector {
  version?: number;
  label?: string;
}

export interface ResolvedVersion {
  name: string;
  version: number;
  index: IndexJson;
  edgeflow: EdgeflowJson;
}

const MAX_METADATA_ENTRIES = 256;
const MAX_INDEX_ENTRIES = 1024;

/** Sets a value in a map used as a bounded cache (oldest insertion dropped first). */
function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}

export class ModelRegistry {
  /** index.json per model (null: not published) and when its read started. */
  private readonly indexes = new Map<string, { index: IndexJson | null; at: number }>();
  /** Bumped by invalidate(): a read started before it must not store its (older) value. */
  private readonly generations = new Map<string, number>();
  private readonly metadata = new Map<string, EdgeflowJson>();

  constructor(
    private readonly store: ObjectStore,
    private readonly indexTtlMs: number,
  ) {}

  /** The model's index.json; 404 when the model is not published. */
  async index(name: string): Promise<IndexJson> {
    if (!MODEL_NAME_PATTERN.test(name)) throw notFound(`model ${JSON.stringify(name)} not found (not a valid model name)`);
    const cached = this.indexes.get(name);
    const index = cached && performance.now() - cached.at < this.indexTtlMs ? cached.index : await this.readIndex(name);
    if (!index || index.versions.length === 0) throw notFound(`model ${JSON.stringify(name)} not found`);
    return index;
  }

  /** Reads index.json for this request; keeps it unless a newer read or an invalidate() came first. */
  private async readIndex(name: string): Promise<IndexJson | null> {
    const generation = this.generations.get(name) ?? 0;
    const at = performance.now();
    let index: IndexJson | null;
    try {
      index = (await readIndex(this.store, name))?.index ?? null;
    } catch (error) {
      throw unavailable((error as Error).message);
    }
    const current = this.indexes.get(name);
    if ((this.generations.get(name) ?? 0) === generation && (!current || current.at <= at)) setBounded(this.indexes, name, { index, at }, MAX_INDEX_ENTRIES);
    return index;
  }

  /** Forgets the cached index.json of a model (after a publish, a label move or a delete). */
  invalidate(name: string): void {
    this.indexes.delete(name);
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
  }

  /** The version a selector names (index.json only). */
  async resolveVersion(name: string, selector: VersionSelector = {}): Promise<{ version: number; index: IndexJson }> {
    const index = await this.index(name);
    if (selector.version !== undefined) {
      if (!index.versions.some((v) => v.version === selector.version))
        throw notFound(`model ${name} has no version ${selector.version} (versions: ${index.versions.map((v) => v.version).join(', ')})`);
      return { version: selector.version, index };
    }
    const label = selector.label ?? 'latest';
    const target = labelVersion(index, label) ?? (label === 'latest' ? index.versions[index.versions.length - 1]?.version : undefined);
    if (target === undefined) throw notFound(`model ${name} has no label ${JSON.stringify(label)} (labels: ${Object.keys(index.labels).join(', ') || 'none'})`);
    return { version: target, index };
  }

  async resolve(name: string, selector: VersionSelector = {}): Promise<ResolvedVersion> {
    const { version, index } = await this.resolveVersion(name, selector);
    return { name, version, index, edgeflow: await this.edgeflow(name, version) };
  }

  /** edgeflow.json of a published version: cached once read (versions are immutable). */
  async edgeflow(name: string, version: number): Promise<EdgeflowJson> {
    const key = `${name}/${version}`;
    const cached = this.metadata.get(key);
    if (cached) return cached;
    let found: EdgeflowJson | null;
    try {
      found = await readVersionMetadata(this.store, name, version);
    } catch (error) {
      throw unavailable(`model ${name} version ${version}: ${(error as Error).message}`);
    }
    if (!found) throw unavailable(`model ${name} version ${version}: edgeflow.json is missing from the store`);
    setBounded(this.metadata, key, found, MAX_METADATA_ENTRIES);
    return found;
  }
}
