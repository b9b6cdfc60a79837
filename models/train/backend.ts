// Chooses the TF.js backend a training run uses, and says why.
//   auto:       @tensorflow/tfjs-node-gpu when installed and it finds a GPU, else @tensorflow/tfjs-node,
//               else the fastest pure backend (wasm, then cpu) that registers every kernel the
//               model's training runs (see kernels.ts).
//   tensorflow: the native binding (tfjs-node-gpu, else tfjs-node); an error when neither is installed.
//   wasm / cpu: that backend; an error when it lacks a kernel the training needs.
// The native packages are optional: they are loaded with a dynamic import and are not dependencies.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { EdgeflowError } from '../../shared/errors.ts';

export const BACKEND_REQUESTS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKEND_REQUESTS)[number];

export type NativePackage = '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';
export const NATIVE_PACKAGES: readonly NativePackage[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

/** Pure backends from fastest to slowest for training (wasm-SIMD runs dense and recurrent math several times faster). */
export const PURE_BACKENDS = ['wasm', 'cpu'] as const;
export type PureBackend = (typeof PURE_BACKENDS)[number];

export interface NativeBackend {
  package: NativePackage;
  /** True when the package found a GPU device (tfjs-node-gpu's backend reports it). */
  usingGpu: boolean;
}

/** Loads a native package if installed (registering the 'tensorflow' backend); null when absent. */
export type NativeLoader = (pkg: NativePackage) => Promise<NativeBackend | null>;

export interface BackendChoice {
  /** The TF.js backend name that was set: 'tensorflow', 'wasm' or 'cpu'. */
  backend: string;
  /** The package behind it. */
  package: string;
  usingGpu: boolean;
  reason: string;
}

/** No backend could be started as asked: an EdgeflowError with code 'backend'. */
export class BackendError extends EdgeflowError {
  constructor(message: string) {
    super('backend', message);
    this.name = 'BackendError';
  }
}

const isMissingModule = (error: unknown, pkg: string): boolean => {
  const { code, message } = error as { code?: string; message?: string };
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && (message ?? '').includes(pkg);
};

/** The real loader: a dynamic import of the package, whose import registers the 'tensorflow' backend. */
export const importNative: NativeLoader = async (pkg) => {
  try {
    await import(/* @vite-ignore */ pkg);
  } catch (error) {
    if (isMissingModule(error, pkg)) return null;
    throw new BackendError(`${pkg} is installed but failed to load: ${(error as Error).message}`);
  }
  const backend = tf.findBackend('tensorflow') as { isGPUPackage?: boolean; isUsingGpuDevice?: boolean } | null;
  if (!backend) throw new BackendError(`${pkg} loaded but registered no 'tensorflow' backend (is it version 4.22.0, like @tensorflow/tfjs-core?)`);
  return { package: pkg, usingGpu: Boolean(backend.isGPUPackage && backend.isUsingGpuDevice) };
};

/** Kernels of `required` that `backend` does not register. */
export function missingKernels(backend: string, required: Iterable<string>): string[] {
  return [...required].filter((kernel) => !tf.getKernel(kernel, backend)).sort();
}

export interface SelectOptions {
  /** Kernels one training step runs (forward, gradients, optimizer); from probeTrainingKernels. */
  requiredKernels: readonly string[];
  loadNative?: NativeLoader;
}

async function activate(backend: string): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new BackendError(`the ${backend} backend failed to initialise`);
  await tf.ready();
}

const describeMissing = (missing: string[]) =>
  `lacks ${missing.length} kernel${missing.length === 1 ? '' : 's'} the training needs (${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''})`;

/** Chooses, activates (tf.setBackend) and explains the backend for a training run. */
export async function selectBackend(request: BackendRequest, options: SelectOptions): Promise<BackendChoice> {
  const load = options.loadNative ?? importNative;
  const required = options.requiredKernels;

  if (request === 'auto' || request === 'tensorflow') {
    const absent: string[] = [];
    let cpuOnlyNative: NativeBackend | null = null;
    for (const pkg of NATIVE_PACKAGES) {
      const native = await load(pkg);
      if (!native) {
        absent.push(pkg);
        continue;
      }
      if (pkg === '@tensorflow/tfjs-node-gpu' && !native.usingGpu && request === 'auto') {
        // The GPU package without a GPU still runs TensorFlow's CPU kernels: keep it as the fallback.
        cpuOnlyNative = native;
        continue;
      }
      await activate('tensorflow');
      const why = native.usingGpu
        ? 'it found a GPU'
        : pkg === '@tensorflow/tfjs-node-gpu'
          ? 'it is installed (no GPU found: TensorFlow runs on the CPU)'
          : 'it is installed (native TensorFlow on the CPU)';
      return { backend: 'tensorflow', package: pkg, usingGpu: native.usingGpu, reason: `${pkg}: ${why}${absent.length ? `; ${absent.join(', ')} not installed` : ''}` };
    }
    if (cpuOnlyNative) {
      await activate('tensorflow');
      return { backend: 'tensorflow', package: cpuOnlyNative.package, usingGpu: false, reason: `${cpuOnlyNative.package} is installed but found no GPU: native TensorFlow on the CPU` };
    }
    if (request === 'tensorflow') {
      throw new BackendError(
        `--backend tensorflow needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither is installed: run 'npm install @tensorflow/tfjs-node@4.22.0' (or tfjs-node-gpu on a machine with CUDA), or use --backend auto|wasm|cpu`,
      );
    }
    const reasons: string[] = [`${NATIVE_PACKAGES.join(' and ')} not installed`];
    for (const backend of PURE_BACKENDS) {
      const missing = missingKernels(backend, required);
      if (missing.length === 0) {
        await activate(backend);
        const pkg = `@tensorflow/tfjs-backend-${backend}`;
        reasons.push(`${backend} registers all ${required.length} kernels the training runs${backend === 'wasm' ? ' and is the fastest pure backend' : ''}`);
        return { backend, package: pkg, usingGpu: false, reason: reasons.join('; ') };
      }
      reasons.push(`${backend} ${describeMissing(missing)}`);
    }
    throw new BackendError(`no backend can train this model: ${reasons.join('; ')}`);
  }

  const missing = missingKernels(request, required);
  if (missing.length > 0) throw new BackendError(`--backend ${request} cannot train this model: it ${describeMissing(missing)}; use --backend auto`);
  await activate(request);
  return {
    backend: request,
    package: `@tensorflow/tfjs-backend-${request}`,
    usingGpu: false,
    reason: `asked for with --backend ${request}; it registers all ${required.length} kernels the training runs`,
  };
}
