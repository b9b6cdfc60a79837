// Bundles a small test worker entry with esbuild and runs it in workerd through Miniflare, so a
// suite can check that code (a reader, a codec) behaves the same inside the Workers runtime.
// Different from test/helpers/edge-worker.ts, which builds the real edge Worker with wrangler.
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';

/** One ESM script with every import inlined, resolved the way wrangler resolves for workerd. */
export async function bundleWorkerEntry(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser', 'import'],
    mainFields: ['browser', 'module', 'main'],
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

export interface TestWorker {
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

export async function startTestWorker(script: string): Promise<TestWorker> {
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: '2026-04-01',
    // None: code meant for both runtimes should not need nodejs_compat.
    compatibilityFlags: [],
  });
  const url = await mf.ready;
  return {
    fetch: async (pathname, init) => (await mf.dispatchFetch(new URL(pathname, url), init as never)) as unknown as Response,
    dispose: () => mf.dispose(),
  };
}
