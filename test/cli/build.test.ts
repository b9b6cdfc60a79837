// The compiled CLI (`npm run build` → dist/, which `npm ci` makes): bin/edgeflow.mjs runs it only
// while every source its dist/build.json lists is a file no newer than the build, so that list
// must name real files only (a stand-in module of the build, such as require-tfjs:..., listed
// there would send every run back to tsx without a word). Reads the build there is: a test must
// not rebuild dist/ while other suites run from it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../scripts/edge-worker.ts';

const manifest = path.join(repoRoot, 'dist', 'build.json');
const built = existsSync(manifest);

describe('the compiled CLI', () => {
  it.skipIf(!built)(`dist/build.json lists the sources it was built from, each a file of the repository${built ? '' : ' (no dist/ here: npm run build makes it)'}`, () => {
    const { inputs } = JSON.parse(readFileSync(manifest, 'utf8')) as { inputs: string[] };
    expect(inputs).toContain('cli/main.ts');
    const missing = inputs.filter((input) => !existsSync(path.join(repoRoot, input)) || !statSync(path.join(repoRoot, input)).isFile());
    expect(missing).toEqual([]);
  });
});
