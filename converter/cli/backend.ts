// Node only: starts the TF.js WASM backend (SIMD where the CPU has it) for CLI commands.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

export async function useNodeBackend(): Promise<string> {
  if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) throw new Error('could not start the TF.js wasm backend');
  await tf.ready();
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  return `TF.js wasm${simd ? ' with SIMD' : ' WITHOUT SIMD (slower)'}`;
}
