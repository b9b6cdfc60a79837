// Node only: starts the TF.js WASM backend for CLI commands (the same starter as `edgeflow serve`)
// and says in a line what it got.
import { startNodeBackend } from '../functions/runtime/backend-node.ts';

export async function useNodeBackend(): Promise<string> {
  const { simd } = await startNodeBackend();
  return `TF.js wasm${simd ? ' with SIMD' : ' WITHOUT SIMD (slower)'}`;
}
