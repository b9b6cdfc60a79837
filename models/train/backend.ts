// Chooses the TF.js backend a training run uses, and says why.
//   auto:       @tensorflow/tfjs-node-gpu when installed and it finds a GPU, else WebGPU (Dawn) on a
//               GPU adapter, else @tensorflow/tfjs-node, else WebGPU on a software adapter when
//               allowed (allowSoftwareGpu), else the fastest pure backend (wasm, then cpu) that
//               registers every kernel the model's training runs (see kernels.ts).
//   tensorflow: the native binding (tfjs-node-gpu, else tfjs-node); an error when neither is installed.
//   webgpu:     Dawn's adapter (webgpu.ts); a software one only when allowed.
//   wasm / cpu: that backend; an error when it lacks a kernel the training needs.
// The native packages are optional: they are loaded with a dynamic import and are not dependencies.
// Dawn is a dependency but is imported only when WebGPU is tried.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { EdgeflowError } from '../../shared/errors.ts';
import { describeAdapter, type GpuAdapter, importWebGpu, type WebGpuLoader } from './webgpu.ts';

export const BACKEND_REQUESTS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
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
  /** The TF.js backend name that was set: 'tensorflow', 'webgpu', 'wasm' or 'cpu'. */
  backend: string;
  /** The package behind it. */
  package: string;
  usingGpu: boolean;
  /** The WebGPU adapter trained on (backend 'webgpu'). */
  adapter?: GpuAdapter;
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
  /** How WebGPU is loaded (tests pass a stand-in); Dawn's by default. */
  loadWebGpu?: WebGpuLoader;
  /** Accept a software WebGPU adapter (lavapipe): slower than a GPU, faster than cpu on CNNs. */
  allowSoftwareGpu?: boolean;
}

async function activate(backend: string): Promise<void> {
  if (!(await tf.setBackend(backend))) throw new BackendError(`the ${backend} backend failed to initialise`);
  await tf.ready();
}

const describeMissing = (missing: string[]) =>
  `lacks ${missing.length} kernel${missing.length === 1 ? '' : 's'} the training needs (${missing.slice(0, 6).join(', ')}${missing.length > 6 ? ', ...' : ''})`;

const WEBGPU_PACKAGE = '@tensorflow/tfjs-backend-webgpu (Dawn)';

function webGpuChoice(adapter: GpuAdapter, why: string): BackendChoice {
  return { backend: 'webgpu', package: WEBGPU_PACKAGE, usingGpu: !adapter.software, adapter, reason: `${describeAdapter(adapter)}: ${why}` };
}

/** WebGPU as a candidate: usable (kernels and adapter kind), or a note saying why not (without 'webgpu: '). */
async function tryWebGpu(options: SelectOptions): Promise<{ adapter: GpuAdapter; usable: boolean; note: string } | { adapter: null; note: string }> {
  const probe = await (options.loadWebGpu ?? importWebGpu)();
  if (!probe.adapter) return { adapter: null, note: probe.reason };
  const missing = missingKernels('webgpu', options.requiredKernels);
  if (missing.length > 0) return { adapter: probe.adapter, usable: false, note: `it ${describeMissing(missing)}` };
  if (probe.adapter.software && !options.allowSoftwareGpu) {
    return { adapter: probe.adapter, usable: false, note: `Dawn found only a ${describeAdapter(probe.adapter)}: --allow-software-gpu trains on it` };
  }
  return { adapter: probe.adapter, usable: true, note: '' };
}

/** auto's WebGPU start: false (with a note) when the device fails to start, so auto falls back. */
async function activateWebGpu(notes: string[]): Promise<boolean> {
  try {
    await activate('webgpu');
    return true;
  } catch (error) {
    notes.push(`webgpu: ${(error as Error).message}`);
    return false;
  }
}

/** Chooses, activates (tf.setBackend) and explains the backend for a training run. */
export async function selectBackend(request: BackendRequest, options: SelectOptions): Promise<BackendChoice> {
  const load = options.loadNative ?? importNative;
  const required = options.requiredKernels;

  if (request === 'webgpu') {
    const webgpu = await tryWebGpu(options);
    if (!webgpu.adapter || !webgpu.usable) throw new BackendError(`--backend webgpu cannot train this model: ${webgpu.note}`);
    await activate('webgpu');
    return webGpuChoice(webgpu.adapter, `asked for with --backend webgpu${webgpu.adapter.software ? ' and --allow-software-gpu' : ''}`);
  }

  if (request === 'auto' || request === 'tensorflow') {
    const absent: string[] = [];
    const installed: NativeBackend[] = [];
    for (const pkg of NATIVE_PACKAGES) {
      const native = await load(pkg);
      if (native) installed.push(native);
      else absent.push(pkg);
    }
    const absentNote = absent.length ? `; ${absent.join(', ')} not installed` : '';
    const useNative = async (native: NativeBackend, why: string): Promise<BackendChoice> => {
      await activate('tensorflow');
      return { backend: 'tensorflow', package: native.package, usingGpu: native.usingGpu, reason: `${native.package}: ${why}` };
    };
    const gpuNative = installed.find((n) => n.usingGpu);
    if (gpuNative) return useNative(gpuNative, `it found a GPU${absentNote}`);

    const notes: string[] = [];
    let webgpu: Awaited<ReturnType<typeof tryWebGpu>> | undefined;
    if (request === 'auto') {
      webgpu = await tryWebGpu(options);
      if (webgpu.adapter && webgpu.usable && !webgpu.adapter.software && (await activateWebGpu(notes))) {
        return webGpuChoice(webgpu.adapter, `a GPU adapter that runs every kernel the training needs${installed.length ? '' : `; ${NATIVE_PACKAGES.join(' and ')} not installed`}`);
      }
      if (webgpu.note) notes.push(`webgpu: ${webgpu.note}`);
    }
    // tfjs-node first; the GPU package without a GPU still runs TensorFlow's CPU kernels.
    const cpuNative = installed.find((n) => n.package === '@tensorflow/tfjs-node') ?? installed[0];
    if (cpuNative) {
      const why = cpuNative.package === '@tensorflow/tfjs-node-gpu' ? 'it is installed but found no GPU: native TensorFlow on the CPU' : `it is installed (native TensorFlow on the CPU)${absentNote}`;
      return useNative(cpuNative, [why, ...notes].join('; '));
    }
    if (request === 'tensorflow') {
      throw new BackendError(
        `--backend tensorflow needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither is installed: run 'npm install @tensorflow/tfjs-node@4.22.0' (or tfjs-node-gpu on a machine with CUDA), or use --backend auto|webgpu|wasm|cpu`,
      );
    }
    const reasons: string[] = [`${NATIVE_PACKAGES.join(' and ')} not installed`];
    if (webgpu?.adapter && webgpu.usable && webgpu.adapter.software && (await activateWebGpu(notes))) {
      return webGpuChoice(webgpu.adapter, `allowed by --allow-software-gpu and it runs every kernel the training needs; ${reasons[0]}`);
    }
    reasons.push(...notes);
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
