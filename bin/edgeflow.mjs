#!/usr/bin/env node
// The edgeflow command. Runs the compiled CLI in dist/ (`npm run build`, which `npm ci` and
// `npm install` run through `prepare`) when it is current: no source it was built from is newer
// than the build. Otherwise (never built, or a source edited since) it runs the TypeScript
// sources through tsx: slower to start, never out of date.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

/** dist/main.mjs when the build is current with every source it read; null otherwise. */
function currentBuild() {
  try {
    const { startedAt, inputs } = JSON.parse(readFileSync(new URL('dist/build.json', root), 'utf8'));
    if (inputs.some((input) => statSync(new URL(input, root)).mtimeMs > startedAt)) return null;
    return new URL('dist/main.mjs', root).href;
  } catch {
    return null; // not built, or a source it read is gone
  }
}

let entry = currentBuild();
if (!entry) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = new URL('cli/main.ts', root).href;
}
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
