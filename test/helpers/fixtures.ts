// The real model files handed to the project, in ../shared/fixtures beside the checkout.
// Suites that need them skip with a visible reason when the folder is absent.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileSet } from '../../converter/model.ts';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures');
export const HAVE_FIXTURES = existsSync(path.join(FIXTURES, 'MANIFEST.md'));
export const NO_FIXTURES_REASON = `skipped: ${FIXTURES} is absent (the shared fixtures live beside the checkout)`;

if (!HAVE_FIXTURES) console.warn(NO_FIXTURES_REASON);

export function fixturePath(relative: string): string {
  return path.join(FIXTURES, relative);
}

/** A fixture folder, or a model.json plus the shards it names, as a FileSet. */
export function readFixture(relative: string): FileSet {
  const full = fixturePath(relative);
  const files: FileSet = new Map();
  if (statSync(full).isDirectory()) {
    for (const name of readdirSync(full)) files.set(name, readFileSync(path.join(full, name)));
    return files;
  }
  files.set(path.basename(full), readFileSync(full));
  if (full.endsWith('.json')) {
    const manifest = JSON.parse(readFileSync(full, 'utf8')) as { weightsManifest: { paths: string[] }[] };
    for (const shard of manifest.weightsManifest.flatMap((g) => g.paths)) files.set(shard, readFileSync(path.join(path.dirname(full), shard)));
  }
  return files;
}
