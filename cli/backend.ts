// Node only: starts the TF.js WASM backend for CLI commands (the same starter as `edgeflow serve`)
// and says in a line what it got; the isolated converter the watchers use.
import '@tensorflow/tfjs-backend-cpu'; // the reference backend the converter checks the serving backend against (converter/backend-check.ts)
import { startNodeBackend } from '../functions/node.ts';
import { isolatedConverter, type Converter } from '../converter/node.ts';
import { quietTensorFlow } from './quiet.ts';

/** Starts the backend, quietly (no "install our node backend" banner: benches call this too). */
export async function useNodeBackend(): Promise<string> {
  quietTensorFlow();
  const { simd } = await startNodeBackend();
  return `TF.js wasm${simd ? ' with SIMD' : ' WITHOUT SIMD (slower)'}`;
}

/** The converter of `serve --watch` and `watch`: each conversion in a worker thread with a heap limit, apart from serving (converter/isolated.ts). */
export function isolatedNodeConverter(): Converter {
  return isolatedConverter({ workerUrl: new URL('./convert-worker.mjs', import.meta.url) });
}
