// Publishes a converted model as a new immutable version:
//   1. claim the next version number with a create-if-absent write of models/<name>/<v>/.claim
//   2. write model.json and the shards, then edgeflow.json (with every file's sha256 and size)
//   3. add the version to models/<name>/index.json with a conditional write (retried on conflict)
// Readers only trust index.json, so a version is never visible before all its files are there.
// A publish that carries a sourceId is idempotent: a retry finds its own claim or entry.
import { sleep } from '../bytes.ts';
import { readIndex } from './published.ts';
import type { IndexJson, VersionEntry } from '../schemas/index-json.ts';
import type { EdgeflowJson, FileEntry } from '../schemas/edgeflow-json.ts';
import { sha256Hex } from '../hash.ts';
import { checkModelName, keys } from '../names.ts';
import { PreconditionFailedError, type ObjectStore } from '../store/types.ts';
import { getJson, putJson } from '../store/util.ts';

export type VersionMetadata = Omit<EdgeflowJson, 'edgeflow' | 'name' | 'version' | 'created' | 'files'>;

export interface PublishRequest {
  name: string;
  /** model.json and shard files. */
  files: Map<string, Uint8Array>;
  metadata: VersionMetadata;
  /** Identity of the input (upload id, or a hash of the source); makes retries idempotent. */
  sourceId?: string;
}

export interface PublishResult {
  version: number;
  /** True when this source had already been published (nothing was written). */
  existing: boolean;
}

const MAX_ATTEMPTS = 64;

const backoff = (attempt: number) => sleep(Math.min(500, 5 * 2 ** attempt) * (0.5 + Math.random()));

/** Claims the lowest free version above every published one (or this source's own earlier claim). */
async function claimVersion(store: ObjectStore, name: string, sourceId: string | undefined, published: IndexJson | null): Promise<number> {
  let version = Math.max(0, ...(published?.versions.map((v) => v.version) ?? [])) + 1;
  for (let attempt = 0; attempt < 10_000; attempt++, version++) {
    try {
      await putJson(store, keys.claim(name, version), { sourceId: sourceId ?? null, claimed: new Date().toISOString() }, { ifNoneMatch: '*' });
      return version;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      if (sourceId) {
        const claim = await getJson(store, keys.claim(name, version));
        if ((claim?.value as { sourceId?: string } | undefined)?.sourceId === sourceId) return version;
      }
    }
  }
  throw new Error(`could not claim a version of ${name}`);
}

/**
 * Read-modify-write of index.json, conditional on its etag; retried when another writer wins.
 * missing: the index to start from when there is none yet (or throw to refuse).
 */
export async function updateIndex(
  store: ObjectStore,
  name: string,
  change: (index: IndexJson) => IndexJson,
  missing: () => IndexJson = () => ({ name, versions: [], labels: {} }),
): Promise<IndexJson> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await readIndex(store, name); // freshly parsed: change() may modify it
    const next = change(current ? current.index : missing());
    try {
      await putJson(store, keys.index(name), next, current ? { ifMatch: current.etag } : { ifNoneMatch: '*' });
      return next;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
      await backoff(attempt);
    }
  }
  throw new Error(`index.json of ${name} kept changing: gave up after ${MAX_ATTEMPTS} attempts`);
}

export async function publishVersion(store: ObjectStore, request: PublishRequest): Promise<PublishResult> {
  const name = checkModelName(request.name);
  const published = (await readIndex(store, name))?.index ?? null;
  const done = request.sourceId ? published?.versions.find((v) => v.sourceId === request.sourceId) : undefined;
  if (done) return { version: done.version, existing: true };
  const version = await claimVersion(store, name, request.sourceId, published);

  const files: Record<string, FileEntry> = {};
  let bytes = 0;
  await Promise.all(
    [...request.files].map(async ([file, body]) => {
      files[file] = { size: body.byteLength, sha256: await sha256Hex(body) };
      bytes += body.byteLength;
      await store.put(keys.versionFile(name, version, file), body, { contentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    }),
  );
  const created = new Date().toISOString();
  const edgeflow: EdgeflowJson = { edgeflow: 1, name, version, created, ...request.metadata, files };
  await putJson(store, keys.versionFile(name, version, 'edgeflow.json'), edgeflow);

  const entry: VersionEntry = { version, created, format: request.metadata.format, bytes, ...(request.sourceId ? { sourceId: request.sourceId } : {}) };
  // A concurrent publish of the same source may have landed first: keep its version only.
  let existing: number | undefined;
  await updateIndex(store, name, (index) => {
    existing = request.sourceId ? index.versions.find((v) => v.sourceId === request.sourceId && v.version !== version)?.version : undefined;
    if (existing === undefined && !index.versions.some((v) => v.version === version)) index.versions.push(entry);
    index.versions.sort((a, b) => a.version - b.version);
    if (index.versions.length > 0) index.labels.latest = index.versions[index.versions.length - 1]!.version;
    return index;
  });
  return existing === undefined ? { version, existing: false } : { version: existing, existing: true };
}
