// Puts models into a store for tests and benches: the code-built demo models and, when
// ../shared/fixtures is present, the nsfwjs MobileNetV2 layers fixture (read from disk).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { convertAndPublish } from '../../converter/convert.ts';
import type { FileSet } from '../../converter/model.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import { fixturesRoot } from './edge-worker.ts';

export const MOBILENET_DIR = path.join(fixturesRoot, 'tfjs-layers/nsfwjs-mobilenet_v2');

export async function fixturePresent(dir = MOBILENET_DIR): Promise<boolean> {
  return fs.stat(dir).then(() => true, () => false);
}

export async function readFolder(dir: string): Promise<FileSet> {
  const files: FileSet = new Map();
  for (const name of await fs.readdir(dir)) files.set(name, new Uint8Array(await fs.readFile(path.join(dir, name))));
  return files;
}

export async function publishFolder(store: ObjectStore, dir: string, name: string, quantize: string): Promise<number> {
  const result = await convertAndPublish(store, await readFolder(dir), { name, quantize, samples: 2 });
  return result.version;
}
