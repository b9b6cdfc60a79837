// Resolves a model name plus a version or label to a published version, reading
// models/<name>/index.json (cached briefly: labels move) and the version's edgeflow.json
// (cached for good: versions are immutable).
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

export class ModelRegistry {
  /** One read per model per TTL, shared by concurrent requests; a failed read is not kept. */
  private readonly indexes = new Map<string, { index: Promise<IndexJson | null>; at: number }>();
  private readonly metadata = new Map<string, Promise<EdgeflowJson>>();

  constructor(
    private readonly store: ObjectStore,
    private readonly indexTtlMs: number,
  ) {}

  /** The model's index.json; 404 when the model is not published. */
  async index(name: string): Promise<IndexJson> {
    if (!MODEL_NAME_PATTERN.test(name)) throw notFound(`model ${JSON.stringify(name)} not found (not a valid model name)`);
    let cached = this.indexes.get(name);
    if (!cached || performance.now() - cached.at >= this.indexTtlMs) {
      const reading = readIndex(this.store, name).then(
        (found) => found?.index ?? null,
        (error: unknown) => {
          throw unavailable((error as Error).message);
        },
      );
      const entry = { index: reading, at: performance.now() };
      this.indexes.set(name, entry);
      reading.catch(() => this.indexes.get(name) === entry && this.indexes.delete(name));
      cached = entry;
    }
    const index = await cached.index;
    if (!index || index.versions.length === 0) throw notFound(`model ${JSON.stringify(name)} not found`);
    return index;
  }

  /** Forgets the cached index.json of a model (after a publish, a label move or a delete). */
  invalidate(name: string): void {
    this.indexes.delete(name);
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
  edgeflow(name: string, version: number): Promise<EdgeflowJson> {
    const key = `${name}/${version}`;
    let pending = this.metadata.get(key);
    if (!pending) {
      pending = (async () => {
        let found: EdgeflowJson | null;
        try {
          found = await readVersionMetadata(this.store, name, version);
        } catch (error) {
          throw unavailable(`model ${name} version ${version}: ${(error as Error).message}`);
        }
        if (!found) throw unavailable(`model ${name} version ${version}: edgeflow.json is missing from the store`);
        return found;
      })();
      this.metadata.set(key, pending);
      pending.catch(() => this.metadata.delete(key));
      if (this.metadata.size > MAX_METADATA_ENTRIES) this.metadata.delete(this.metadata.keys().next().value!);
    }
    return pending;
  }
}
