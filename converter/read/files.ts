// Node only: reads a CLI input (a folder, a model.json, or one .zip / .h5 / .keras file) into a
// FileSet; a model.json brings its shards and the calibration.json / .npy beside it.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConversionError } from '../../shared/errors.ts';
import type { FileSet } from '../model.ts';
import { parseModelJson } from './tfjs.ts';
import { CALIBRATION_JSON } from '../../shared/bucket/calibration.ts';

async function readFolder(root: string, files: FileSet, prefix = ''): Promise<void> {
  for (const entry of await fs.readdir(path.join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) await readFolder(root, files, relative);
    else if (entry.isFile()) files.set(relative, await fs.readFile(path.join(root, relative)));
  }
}

export async function readInput(input: string): Promise<FileSet> {
  const stat = await fs.stat(input).catch(() => null);
  if (!stat) throw new ConversionError(`${input}: no such file or folder`);
  const files: FileSet = new Map();
  if (stat.isDirectory()) {
    await readFolder(input, files);
    return files;
  }
  const bytes = await fs.readFile(input);
  if (!input.endsWith('.json')) return files.set(path.basename(input), bytes);
  // A model.json: take it and the shard files its manifest names, from its folder.
  const name = path.basename(input);
  files.set(name, bytes);
  const modelJson = parseModelJson(bytes, name);
  for (const shard of modelJson.weightsManifest.flatMap((group) => group.paths)) {
    const shardPath = path.join(path.dirname(input), shard);
    const shardBytes = await fs.readFile(shardPath).catch(() => null);
    if (shardBytes) files.set(shard, shardBytes);
  }
  // Held-out inputs beside it (what `edgeflow train` writes) travel with it, as in a folder.
  for (const name of [CALIBRATION_JSON, 'calibration.npy']) {
    const bytes = await fs.readFile(path.join(path.dirname(input), name)).catch(() => null);
    if (bytes && name !== path.basename(input)) files.set(name, bytes);
  }
  return files;
}
