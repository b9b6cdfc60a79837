// Version and label management of published models, over any ObjectStore: list models,
// describe one (versions, labels, sizes, quantization), move a label, delete a version.
// Every change is a conditional read-modify-write of index.json (publish.ts updateIndex), so
// it composes with concurrent publishes. `latest` is managed: it always names the newest version.
import { EdgeflowError } from '../errors.ts';
import { checkModelName, keys, MODEL_NAME_PATTERN } from '../names.ts';
import { dtypeCounts, readIndex, readVersionMetadata } from './published.ts';
import type { EdgeflowJson } from '../schemas/edgeflow-json.ts';
import { LABEL_PATTERN, labelVersion, type IndexJson } from '../schemas/index-json.ts';
import type { ObjectStore } from '../store/types.ts';
import { listAll } from '../store/util.ts';
import { updateIndex } from './publish.ts';

/** A refused change: bad_request, not_found or conflict. */
export class ModelAdminError extends EdgeflowError {
  constructor(code: 'bad_request' | 'not_found' | 'conflict', message: string) {
    super(code, message);
    this.name = 'ModelAdminError';
  }
}

export interface VersionSummary {
  version: number;
  created: string;
  format: string;
  bytes: number;
  sourceId?: string;
  labels: string[];
  source?: { format: string; files: string[]; bytes: number; uploadId?: string };
  sizes?: EdgeflowJson['sizes'];
  quantization?: { spec: string; dtypes: Record<string, number> };
  report?: EdgeflowJson['report'];
  /** The training run's record (metrics, per-epoch history), for a model from `edgeflow train`. */
  training?: EdgeflowJson['training'];
}

export interface ModelSummary {
  name: string;
  labels: Record<string, number>;
  versions: VersionSummary[];
}

function checkName(name: string): string {
  try {
    return checkModelName(name);
  } catch (error) {
    throw new ModelAdminError('bad_request', (error as Error).message);
  }
}

const notFound = (name: string) => new ModelAdminError('not_found', `model ${JSON.stringify(name)} not found`);

async function requireIndex(store: ObjectStore, name: string): Promise<IndexJson> {
  const found = await readIndex(store, checkName(name));
  if (!found) throw notFound(name);
  return found.index;
}

/** updateIndex for an existing model: 404 when it has no index.json. */
const updateExisting = (store: ObjectStore, name: string, change: (index: IndexJson) => IndexJson) =>
  updateIndex(store, name, change, () => {
    throw notFound(name);
  });

export async function listModels(store: ObjectStore): Promise<{ name: string; versions: number[]; labels: Record<string, number> }[]> {
  const names = (await listAll(store, 'models/')).map((o) => /^models\/([^/]+)\/index\.json$/.exec(o.key)?.[1]).filter((n): n is string => !!n && MODEL_NAME_PATTERN.test(n));
  const models = await Promise.all(names.map(async (name) => ({ name, index: (await readIndex(store, name).catch(() => null))?.index })));
  return models.filter((m) => m.index).map(({ name, index }) => ({ name, versions: index!.versions.map((v) => v.version), labels: index!.labels }));
}

export async function describeModel(store: ObjectStore, name: string): Promise<ModelSummary> {
  const index = await requireIndex(store, name);
  const versions = await Promise.all(
    index.versions.map(async (entry): Promise<VersionSummary> => {
      const labels = Object.entries(index.labels)
        .filter(([, v]) => v === entry.version)
        .map(([label]) => label);
      const meta = await readVersionMetadata(store, name, entry.version).catch(() => null);
      if (!meta) return { ...entry, labels };
      const source = { format: meta.source.format, files: meta.source.files, bytes: meta.source.bytes, ...(meta.source.uploadId ? { uploadId: meta.source.uploadId } : {}) };
      return {
        ...entry,
        labels,
        source,
        sizes: meta.sizes,
        quantization: { spec: meta.quantization.spec, dtypes: dtypeCounts(meta.quantization.weights) },
        report: meta.report,
        ...(meta.training ? { training: meta.training } : {}),
      };
    }),
  );
  return { name, labels: index.labels, versions };
}

/** Points label at version (rollback = pointing `stable` back). */
export async function setLabel(store: ObjectStore, name: string, label: string, version: number): Promise<IndexJson> {
  checkName(name);
  if (!LABEL_PATTERN.test(label)) throw new ModelAdminError('bad_request', `label ${JSON.stringify(label)}: use a-z, 0-9, '_' or '-', starting with a letter (up to 64)`);
  if (label === 'latest') throw new ModelAdminError('bad_request', 'label latest is managed: it always names the newest version');
  if (!Number.isInteger(version) || version < 1) throw new ModelAdminError('bad_request', `version: a positive integer is required, got ${JSON.stringify(version)}`);
  return updateExisting(store, name, (index) => {
    if (!index.versions.some((v) => v.version === version)) {
      throw new ModelAdminError('not_found', `model ${name} has no version ${version} (versions: ${index.versions.map((v) => v.version).join(', ') || 'none'})`);
    }
    index.labels[label] = version;
    return index;
  });
}

export async function removeLabel(store: ObjectStore, name: string, label: string): Promise<IndexJson> {
  checkName(name);
  if (label === 'latest') throw new ModelAdminError('bad_request', 'label latest is managed: it always names the newest version');
  return updateExisting(store, name, (index) => {
    if (labelVersion(index, label) === undefined) throw new ModelAdminError('not_found', `model ${name} has no label ${JSON.stringify(label)}`);
    delete index.labels[label];
    return index;
  });
}

/**
 * Removes a version from index.json (refused while a label other than `latest` points at it;
 * `latest` moves to the newest remaining version), then deletes its files. The version's
 * `.claim` stays as a tombstone, so its number is never given to another model.
 */
export async function deleteVersion(store: ObjectStore, name: string, version: number): Promise<{ index: IndexJson; deletedFiles: number }> {
  checkName(name);
  const index = await updateExisting(store, name, (current) => {
    if (!current.versions.some((v) => v.version === version)) throw new ModelAdminError('not_found', `model ${name} has no version ${version}`);
    const pinned = Object.entries(current.labels)
      .filter(([label, v]) => v === version && label !== 'latest')
      .map(([label]) => label);
    if (pinned.length) {
      throw new ModelAdminError(
        'conflict',
        `version ${version} of ${name} is labelled ${pinned.join(', ')}: point ${pinned.length > 1 ? 'those labels' : 'that label'} at another version first (PUT /admin/models/${name}/labels/${pinned[0]})`,
      );
    }
    current.versions = current.versions.filter((v) => v.version !== version);
    const newest = current.versions[current.versions.length - 1];
    if (newest) current.labels.latest = newest.version;
    else delete current.labels.latest;
    return current;
  });
  const claim = keys.claim(name, version);
  const files = (await listAll(store, keys.versionPrefix(name, version))).filter((o) => o.key !== claim);
  await Promise.all(files.map((o) => store.delete(o.key)));
  return { index, deletedFiles: files.length };
}
