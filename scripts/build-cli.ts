// `npm run build` (also run by `npm ci` / `npm install` through `prepare`): compiles the
// `edgeflow` command to plain JavaScript in dist/, so a serving process starts without tsx
// compiling TypeScript at run time. bin/edgeflow.mjs runs dist/ while it is current (no source
// it was built from changed since) and the sources through tsx otherwise.
//
// Our code is bundled with code splitting, so each command (and the AWS SDK of an s3:// store)
// stays a lazy import; npm packages stay external, loaded from node_modules as before (TF.js
// finds its .wasm files beside itself, Dawn and the AWS SDK load only when used), TF.js through
// `require` (requireTfjs below). The one
// exception: deep imports of an ESM file inside a package's dist/ (tfjs-converter's op mapper),
// which Node cannot load (the package is CommonJS): those files are bundled, their own imports
// of packages external. Every output sits in dist/ itself, one folder below the root like cli/,
// so `new URL('../package.json', import.meta.url)` and `./convert-worker.mjs` still resolve.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type Plugin } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const DIST = path.join(root, 'dist');
/** What bin/edgeflow.mjs reads: when the build started and the sources it read (root-relative). */
const BUILD_MANIFEST = 'build.json';

/** Small pure-ESM packages on the serving path, bundled: one file parses faster than their hundreds. */
const BUNDLED = /^(hono|@hono\/node-server|zod)(\/|$)/;

/** Bare imports stay external, but BUNDLED and a deep ESM file of a package (`pkg/dist/x.js`) are bundled. */
const packagesExternal: Plugin = {
  name: 'packages-external',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.test(args.path) || /^(@[^/]+\/)?[^/]+\/dist\/.+\.js$/.test(args.path) ? undefined : { path: args.path, external: true }));
  },
};

/**
 * TF.js's packages are CommonJS, and an ESM `import` of one makes Node scan the whole file
 * (about 1 MB each) for its export names before running it: tfjs-core, -converter and
 * -backend-wasm took 400-440 ms of CPU to import that way against 113-124 ms through `require`
 * (measured here). So they stay external but are loaded with the `require` every output file
 * makes (BANNER); one copy of each, from node_modules, as before (Node's import of a CommonJS
 * package shares require's cache).
 */
const TFJS = /^@tensorflow\/tfjs-(core|converter|layers|backend-cpu|backend-wasm|backend-webgpu)$/;
const requireTfjs: Plugin = {
  name: 'require-tfjs',
  setup(esbuild) {
    // The stand-in's own require stays external (Node's, from the banner), and so does a dynamic
    // import (tfjs-layers, WebGPU): esbuild would give its chunk a default export only.
    esbuild.onResolve({ filter: TFJS }, (args) =>
      args.namespace === 'require-tfjs' || args.kind === 'dynamic-import' ? { path: args.path, external: true } : { path: args.path, namespace: 'require-tfjs' },
    );
    esbuild.onLoad({ filter: /.*/, namespace: 'require-tfjs' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};
const BANNER = "import { createRequire as edgeflowCreateRequire } from 'node:module';\nconst require = edgeflowCreateRequire(import.meta.url);";

/** Builds dist/ afresh (into a new folder, swapped in at the end); returns its size in bytes. */
export async function buildCli(): Promise<{ bytes: number; files: number; ms: number }> {
  const startedAt = Date.now();
  const staging = `${DIST}.${process.pid}.tmp`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: 'cli/main.ts', 'convert-worker': 'cli/convert-worker.ts' },
    outdir: staging,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    banner: { js: BANNER },
    plugins: [requireTfjs, packagesExternal],
    metafile: true,
    logLevel: 'warning',
  });
  // Our sources only: not packages, nor the require-tfjs stand-ins (no file behind them).
  const inputs = Object.keys(result.metafile.inputs).filter((input) => !input.includes('node_modules/') && !input.startsWith('require-tfjs:'));
  await writeFile(path.join(staging, BUILD_MANIFEST), `${JSON.stringify({ startedAt, inputs }, null, 1)}\n`);
  await rm(DIST, { recursive: true, force: true });
  await rename(staging, DIST);
  const outputs = Object.values(result.metafile.outputs);
  return { bytes: outputs.reduce((sum, o) => sum + o.bytes, 0), files: outputs.length, ms: Date.now() - startedAt };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const { bytes, files, ms } = await buildCli();
  console.log(`edgeflow: built dist/ (${files} files, ${(bytes / 1024).toFixed(0)} KiB) in ${ms} ms`);
}
