// Node starter: the stock @tensorflow/tfjs-backend-wasm (it finds its .wasm files on disk).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendInfo } from './backend.ts';

export async function startNodeBackend(): Promise<BackendInfo> {
  if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
  await tf.ready();
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const threads = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
  const binary = simd && threads ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  return { backend: tf.getBackend(), simd, threads, binary };
}
