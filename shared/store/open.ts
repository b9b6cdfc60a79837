// Node only: turns a --store / --out argument into an ObjectStore.
// `s3://bucket/prefix` uses the AWS SDK's usual environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION) plus AWS_ENDPOINT_URL for R2 / MinIO / local servers.
// What opening a store can go wrong with is decided here, as EdgeflowErrors: an unsupported
// URL, a folder that is missing (openExistingStore) or is a file (openOutputStore), S3 without
// credentials or with a missing bucket.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { EdgeflowError } from '../errors.ts';
import { LocalFolderStore } from './local.ts';
import type { ObjectStore } from './types.ts';

const S3_URL = /^s3:\/\/([^/]+)\/?(.*)$/;

export async function openStore(location: string, env: NodeJS.ProcessEnv = process.env): Promise<ObjectStore> {
  const match = S3_URL.exec(location);
  if (!match) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) throw new EdgeflowError('bad_request', `unsupported store ${location}: use a folder path or s3://bucket/prefix`);
    return new LocalFolderStore(location);
  }
  const { openS3Store } = await import('./s3-open.ts');
  return openS3Store(location, match, env);
}

async function folderKind(folder: string): Promise<'folder' | 'file' | 'under-file' | 'missing'> {
  try {
    return (await stat(folder)).isDirectory() ? 'folder' : 'file';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTDIR') return 'under-file';
    throw new EdgeflowError('bad_request', `cannot use ${folder} as a store: ${(error as Error).message}`);
  }
}

/** One request that fails at once on missing credentials or a missing bucket. */
async function probe(store: ObjectStore): Promise<ObjectStore> {
  await store.list('models/', { limit: 1 });
  return store;
}

/**
 * A store to read from (`serve`, `watch`): a folder must exist (a missing one is a typo, not an
 * empty store); an S3 store must answer with the credentials at hand.
 */
export async function openExistingStore(location: string, env: NodeJS.ProcessEnv = process.env): Promise<ObjectStore> {
  const store = await openStore(location, env);
  if (S3_URL.test(location)) return probe(store);
  const kind = await folderKind(location);
  if (kind === 'missing') throw new EdgeflowError('not_found', `store ${location}: no such folder (publish into it first with 'edgeflow convert <input> --name <name> --out ${location}')`);
  if (kind === 'file' || kind === 'under-file')
    throw new EdgeflowError('bad_request', `store ${location} is ${kind === 'file' ? 'a file' : 'under a file'}, not a folder: give the store's root folder or s3://bucket/prefix`);
  return store;
}

/**
 * A store to publish into (`convert --out`), checked before any work is done: a folder that
 * exists, or can be created (the store creates it on the first write); never a file. An S3
 * store must answer.
 */
export async function openOutputStore(location: string, env: NodeJS.ProcessEnv = process.env): Promise<ObjectStore> {
  const store = await openStore(location, env);
  if (S3_URL.test(location)) return probe(store);
  const kind = await folderKind(location);
  if (kind === 'file' || kind === 'under-file')
    throw new EdgeflowError('bad_request', `${location} is ${kind === 'file' ? 'a file' : 'under a file'}, not a folder: give a folder (the store root) or s3://bucket/prefix`);
  if (kind === 'missing') {
    // The nearest existing ancestor must be a folder we may write in.
    let parent = path.dirname(path.resolve(location));
    while ((await folderKind(parent)) === 'missing' && path.dirname(parent) !== parent) parent = path.dirname(parent);
    if ((await folderKind(parent)) !== 'folder') throw new EdgeflowError('bad_request', `cannot create the folder ${location}: ${parent} is a file`);
    try {
      await access(parent, constants.W_OK);
    } catch {
      throw new EdgeflowError('bad_request', `cannot create the folder ${location}: ${parent} is not writable`);
    }
  }
  return store;
}
