// Node only: starts the TF.js WASM backend for CLI commands (the same starter as `edgeflow serve`)
// and says in a line what it got; the isolated converter the watchers use.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu'; // the reference backend the converter checks the serving backend against (converter/backend-check.ts)
import { startNodeBackend } from '../functions/node.ts';
import { isolatedConverter, type Converter } from '../converter/node.ts';

export async function useNodeBackend(): Promise<string> {
  const { simd } = await startNodeBackend();
  return `TF.js wasm${simd ? ' with SIMD' : ' WITHOUT SIMD (slower)'}`;
}

/**
 * Turns off TF.js's console notes for a CLI run, above all the cpu backend's "Hi, looks like you
 * are running TensorFlow.js in Node.js ... install our node backend" banner on its first tensor:
 * tfjs-core prints its warnings unless the PROD (or IS_TEST) flag is set, and enableProdMode()
 * is the documented way to set it.
 */
export function quietTensorFlow(): void {
  tf.enableProdMode();
}

/** The converter of `serve --watch` and `watch`: each conversion in a worker thread with a heap limit, apart from serving (converter/isolated.ts). */
export function isolatedNodeConverter(): Converter {
  return isolatedConverter({ workerUrl: new URL('./convert-worker.mjs', import.meta.url) });
}
