// Bundles a small test worker entry with esbuild and runs it in workerd through Miniflare, so a
// suite can check that code (a reader, a codec) behaves the same inside the Workers runtime.
// Different from test/helpers/edge-worker.ts, which builds the real edge Worker with wrangler.
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';

export interface BundleOptions {
  /** Extra esbuild `define` replacements. */
  define?: Record<string, string>;
}

/** One ESM script with every import inlined, resolved the way wrangler resolves for workerd. */
export async function bundleWorkerEntry(entry: string, options: BundleOptions = {}): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser', 'import'],
    mainFields: ['module', 'main'],
    write: false,
    logLevel: 'silent',
    define: options.define,
  });
  return result.outputFiles[0]!.text;
}

export interface WorkerOptions {
  compatibilityDate?: string;
  /** Empty by default: code meant for both runtimes should not need nodejs_compat. */
  compatibilityFlags?: string[];
}

export interface TestWorker {
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

export async function startTestWorker(script: string, options: WorkerOptions = {}): Promise<TestWorker> {
  const mf = new Miniflare({
    modules: true,
    script,
    compatibilityDate: options.compatibilityDate ?? '2026-04-01',
    compatibilityFlags: options.compatibilityFlags ?? [],
  });
  const url = await mf.ready;
  return {
    fetch: async (pathname, init) => (await mf.dispatchFetch(new URL(pathname, url), init as never)) as unknown as Response,
    dispose: () => mf.dispose(),
  };
}
