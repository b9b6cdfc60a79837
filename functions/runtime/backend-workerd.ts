// workerd starter. Workers refuse runtime wasm compilation, so the stock init (fetch +
// WebAssembly.instantiate(bytes)) cannot work. Instead, per docs/ARCHITECTURE.md:
//   1. the SIMD binary is imported as a CompiledWasm module (a WebAssembly.Module),
//   2. the package's Emscripten glue is called with an instantiateWasm hook that
//      instantiates that module (instantiating a Module is allowed; compiling is not),
//   3. the same cwrap bridge the package's init() installs is put on module.tfjs,
//   4. the 'wasm' backend factory is re-registered to return new BackendWasm(module).
// The glue must not see `process` (it would take its Node branch), so it is hidden
// while the glue's factory runs. Pinned to @tensorflow/* 4.22.0: re-check on upgrade.
import * as tf from '@tensorflow/tfjs-core';
import { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import createWasmModule from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.js';
import type { BackendWasmModule } from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm.js';
import simdModule from '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-simd.wasm';
import type { BackendInfo } from './backend.ts';

const BINARY = 'tfjs-backend-wasm-simd.wasm';
const WASM_PRIORITY = 3;

/** tfjs-core picks a platform from window / process; workerd has neither, so give it one. */
function ensurePlatform(): void {
  try {
    tf.env().platform.now();
    return;
  } catch {
    // no platform registered
  }
  const encoder = new TextEncoder();
  tf.setPlatform('workerd', {
    fetch: (path: string, init?: RequestInit) => fetch(path, init),
    now: () => performance.now(),
    encode: (text: string, encoding: string) => {
      if (encoding !== 'utf-8' && encoding !== 'utf8') throw new Error(`encoding ${encoding} is not supported`);
      return encoder.encode(text);
    },
    decode: (bytes: Uint8Array, encoding: string) => new TextDecoder(encoding).decode(bytes),
    isTypedArray: (a: unknown): a is Float32Array | Int32Array | Uint8Array | Uint8ClampedArray =>
      a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint8Array || a instanceof Uint8ClampedArray,
    setTimeoutCustom: (fn: () => void, delay: number) => void setTimeout(fn, delay),
  } as unknown as Parameters<typeof tf.setPlatform>[1]);
}

/** Runs fn with globalThis.process hidden (nodejs_compat defines it; the glue must not see it). */
function withoutProcess<T>(fn: () => T): T {
  const scope = globalThis as { process?: unknown };
  if (typeof scope.process === 'undefined') return fn();
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'process');
  Object.defineProperty(globalThis, 'process', { value: undefined, configurable: true, writable: true });
  try {
    return fn();
  } finally {
    if (saved) Object.defineProperty(globalThis, 'process', saved);
  }
}

async function instantiateGlue(): Promise<BackendWasmModule> {
  const factoryConfig = {
    locateFile: (path: string) => path,
    instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) => {
      WebAssembly.instantiate(simdModule, imports).then(
        (instance) => done(instance, simdModule),
        (error: unknown) => console.error(`edgeflow: instantiating ${BINARY} failed: ${String(error)}`),
      );
      return {};
    },
  };
  let aborted: string | null = null;
  const module = await new Promise<BackendWasmModule>((resolve, reject) => {
    const ready = withoutProcess(() =>
      createWasmModule({
        ...factoryConfig,
        onAbort: (message: string) => {
          aborted = String(message);
          reject(new Error(`wasm glue aborted: ${aborted}`));
        },
      }),
    );
    ready.then(resolve, reject);
  });
  // The bridge of @tensorflow/tfjs-backend-wasm's own init() (dist/backend_wasm.js), unchanged.
  const cwrap = (module as unknown as { cwrap: (name: string, ret: string | null, args: string[]) => (...a: number[]) => number }).cwrap;
  module.tfjs = {
    init: cwrap('init', null, []),
    initWithThreadsCount: cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: cwrap('get_threads_count', 'number', []),
    registerTensor: cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: cwrap('dispose_data', null, ['number']),
    dispose: cwrap('dispose', null, []),
  } as BackendWasmModule['tfjs'];
  return module;
}

export async function startWorkerdBackend(): Promise<BackendInfo> {
  ensurePlatform();
  // Kernels are registered for the name 'wasm' by the package import; only the factory changes.
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', async () => new BackendWasm(await instantiateGlue()), WASM_PRIORITY);
  if (!(await tf.setBackend('wasm'))) throw new Error(`the wasm backend did not start (${BINARY} as a CompiledWasm module)`);
  await tf.ready();
  // The SIMD binary compiled (at upload) and instantiated, so the engine has SIMD.
  return { backend: tf.getBackend(), simd: true, threads: false, binary: BINARY };
}
