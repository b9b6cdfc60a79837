// Backend choice for training: the kernels a model's training runs (probed), the pure backends
// that register them, the native packages (absent here: the real loader finds neither), and the
// faster Conv2D filter gradient that lets the wasm backend train CNNs. WebGPU is absent in these
// cases (a stand-in loader that finds no adapter); test/models/train-webgpu.test.ts runs Dawn.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { parseTrainArgs } from '../../cli/train.ts';
import { celsius } from '../../models/celsius.ts';
import { mnist } from '../../models/mnist.ts';
import { spam } from '../../models/spam.ts';
import { BackendError, importNative, selectBackend, type NativeLoader } from '../../models/train/backend.ts';
import { conv2dFilterGradient, installFastGradients } from '../../models/train/fast-gradients.ts';
import { probeTrainingKernels } from '../../models/train/kernels.ts';
import { TrainingOptimizer } from '../../models/train/optimizer.ts';
import type { ModelDefinition } from '../../models/types.ts';
import type { WebGpuLoader } from '../../models/train/webgpu.ts';

const noWebGpu: WebGpuLoader = async () => ({ adapter: null, reason: 'stand-in: no adapter' });

/** Kernels of one training step of `definition` on a zero batch of the given input shape. */
async function kernelsOf(definition: ModelDefinition, inputShape: number[], outputShape: number[], inputDtype: 'float32' | 'int32' = 'float32'): Promise<string[]> {
  const model = definition.build({ dropout: 0.5 });
  const optimizer = new TrainingOptimizer({ learningRate: 0.001, schedule: { kind: 'constant' }, epochs: 1 });
  model.compile({ optimizer, loss: definition.loss, metrics: [...definition.metrics] });
  try {
    return await probeTrainingKernels(async () => {
      const [x, y] = [tf.zeros(inputShape, inputDtype), tf.zeros(outputShape)];
      await model.trainOnBatch(x, y);
      tf.dispose([x, y]);
    });
  } finally {
    model.dispose();
    optimizer.dispose();
  }
}

/** A small Embedding model: with TF.js's stock gradients its training needs UnsortedSegmentSum. */
const tinyEmbedding: ModelDefinition = {
  ...spam,
  build: () => tfl.sequential({ layers: [tfl.layers.embedding({ inputDim: 20, outputDim: 4, inputLength: 5 }), tfl.layers.flatten(), tfl.layers.dense({ units: 1, activation: 'sigmoid' })] }),
};

let mnistKernels: string[];
let mnistKernelsStock: string[];
let spamKernels: string[];
let embeddingKernelsStock: string[];
let celsiusKernels: string[];

beforeAll(async () => {
  await tf.setBackend('cpu');
  mnistKernelsStock = await kernelsOf(mnist, [2, 28, 28, 1], [2, 10]);
  embeddingKernelsStock = await kernelsOf(tinyEmbedding, [2, 5], [2, 1], 'int32');
  const restore = installFastGradients();
  try {
    mnistKernels = await kernelsOf(mnist, [2, 28, 28, 1], [2, 10]);
    spamKernels = await kernelsOf(spam, [2, 256], [2, 1], 'int32');
  } finally {
    restore();
  }
  celsiusKernels = await kernelsOf(celsius, [2, 1], [2, 1]);
});

afterEach(async () => {
  if (tf.findBackend('tensorflow')) tf.removeBackend('tensorflow');
  await tf.setBackend('cpu');
});

describe('training kernels', () => {
  it('include the forward pass, the gradients and the optimizer', () => {
    expect(celsiusKernels).toEqual(expect.arrayContaining(['_FusedMatMul', 'BatchMatMul', 'Sqrt', 'RealDiv', 'Square']));
    expect(mnistKernelsStock).toEqual(expect.arrayContaining(['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'Softmax']));
    expect(embeddingKernelsStock).toEqual(expect.arrayContaining(['GatherV2', 'UnsortedSegmentSum', 'Sigmoid']));
  });
  it('the faster gradients need neither Conv2DBackpropFilter nor UnsortedSegmentSum', () => {
    expect(mnistKernels).toContain('Conv2D');
    expect(mnistKernels).not.toContain('Conv2DBackpropFilter');
    expect(mnistKernels).toContain('BatchMatMul');
    expect(spamKernels).toEqual(expect.arrayContaining(['GatherV2', 'ScatterNd']));
    expect(spamKernels).not.toContain('UnsortedSegmentSum');
  });
});

describe('faster Conv2D filter gradient', () => {
  const cases = [
    { pad: 'same', stride: 1, kernel: 3 },
    { pad: 'valid', stride: 1, kernel: 3 },
    { pad: 'same', stride: 2, kernel: 3 },
    { pad: 'valid', stride: 2, kernel: 5 },
    { pad: 'same', stride: 2, kernel: 4 },
  ] as const;
  for (const { pad, stride, kernel } of cases) {
    it(`equals TF.js's Conv2DBackpropFilter (${pad}, stride ${stride}, ${kernel}x${kernel})`, async () => {
      const x = tf.randomNormal([3, 11, 10, 2]) as tf.Tensor4D;
      const filter = tf.randomNormal([kernel, kernel, 2, 4]) as tf.Tensor4D;
      const loss = (f: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, f as tf.Tensor4D, stride, pad)));
      const stock = tf.grad(loss)(filter);
      const restore = installFastGradients();
      const fast = tf.grad(loss)(filter);
      restore();
      const scale = (await tf.max(tf.abs(stock)).data())[0]!;
      const diff = (await tf.max(tf.abs(tf.sub(stock, fast))).data())[0]!;
      expect(diff / scale).toBeLessThan(1e-5);
    });
  }
  for (const backend of ['cpu', 'wasm']) {
    it(`the Embedding (GatherV2) gradient on ${backend} equals TF.js's own (UnsortedSegmentSum, on cpu)`, async () => {
      const params = tf.randomNormal([30, 6]);
      // Repeated ids: their rows' gradients must add up.
      const ids = tf.tensor2d(
        [
          [1, 2, 2, 29],
          [0, 2, 7, 1],
          [5, 5, 5, 5],
        ],
        [3, 4],
        'int32',
      );
      const weights = tf.randomNormal([3, 4, 6]);
      const loss = (p: tf.Tensor) => tf.sum(tf.mul(tf.gather(p, ids), weights));
      const stock = tf.grad(loss)(params);
      await tf.setBackend(backend);
      const restore = installFastGradients();
      const fast = tf.grad(loss)(params);
      restore();
      expect(Array.from(await fast.data())).toEqual(Array.from(await stock.data()).map((v) => expect.closeTo(v, 5)));
    });
  }
  it('declines dilated and NCHW convolutions (TF.js gradient kept)', () => {
    const x = tf.zeros([1, 5, 5, 1]) as tf.Tensor4D;
    const dy = tf.zeros([1, 5, 5, 1]) as tf.Tensor4D;
    expect(conv2dFilterGradient(x, dy, [3, 3, 1, 1], { strides: 1, pad: 'same', dilations: 2 })).toBeNull();
    expect(conv2dFilterGradient(x, dy, [3, 3, 1, 1], { strides: 1, pad: 'same', dataFormat: 'NCHW' })).toBeNull();
  });
});

describe('backend selection with the native packages absent', () => {
  it('the real loader finds neither native package', async () => {
    expect(await importNative('@tensorflow/tfjs-node-gpu')).toBeNull();
    expect(await importNative('@tensorflow/tfjs-node')).toBeNull();
  });
  it('auto takes wasm when it registers every kernel', async () => {
    const choice = await selectBackend('auto', { requiredKernels: mnistKernels, loadWebGpu: noWebGpu });
    expect(choice.backend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.reason).toMatch(/tfjs-node-gpu and @tensorflow\/tfjs-node not installed; webgpu: stand-in: no adapter; wasm registers all \d+ kernels/);
  });
  it('auto falls back to cpu, naming the kernels wasm lacks', async () => {
    const choice = await selectBackend('auto', { requiredKernels: embeddingKernelsStock, loadWebGpu: noWebGpu });
    expect(choice.backend).toBe('cpu');
    expect(choice.reason).toMatch(/wasm lacks 1 kernel the training needs \(UnsortedSegmentSum\)/);
    const stock = await selectBackend('auto', { requiredKernels: mnistKernelsStock, loadWebGpu: noWebGpu });
    expect(stock.backend).toBe('cpu');
    expect(stock.reason).toContain('Conv2DBackpropFilter');
  });
  it('an asked-for backend that is missing, or lacks a kernel, is a clear error', async () => {
    await expect(selectBackend('tensorflow', { requiredKernels: celsiusKernels })).rejects.toThrow(
      /--backend tensorflow needs @tensorflow\/tfjs-node-gpu or @tensorflow\/tfjs-node, and neither is installed/,
    );
    await expect(selectBackend('wasm', { requiredKernels: embeddingKernelsStock })).rejects.toThrow(BackendError);
    await expect(selectBackend('wasm', { requiredKernels: embeddingKernelsStock })).rejects.toThrow(/--backend wasm cannot train this model: it lacks 1 kernel .*UnsortedSegmentSum/);
    expect((await selectBackend('cpu', { requiredKernels: embeddingKernelsStock })).backend).toBe('cpu');
    expect((await selectBackend('auto', { requiredKernels: spamKernels, loadWebGpu: noWebGpu })).backend).toBe('wasm');
    await expect(selectBackend('webgpu', { requiredKernels: celsiusKernels, loadWebGpu: noWebGpu })).rejects.toThrow(/--backend webgpu cannot train this model: stand-in: no adapter/);
  });
  it('edgeflow train takes --backend webgpu and --allow-software-gpu', () => {
    expect(parseTrainArgs(['mnist', '--backend', 'webgpu', '--allow-software-gpu', '--out', 'x'])).toMatchObject({ model: 'mnist', backend: 'webgpu', allowSoftwareGpu: true });
    expect(parseTrainArgs(['mnist', '--out', 'x'])).not.toHaveProperty('allowSoftwareGpu');
  });
  it('edgeflow train --backend tensorflow fails with that message and exit code 1', async () => {
    const errors: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      // Both fail before anything is trained or saved; --out only satisfies the usage check.
      const out = join(tmpdir(), 'edgeflow-train-never-saved');
      expect(await main(['train', 'celsius', '--backend', 'tensorflow', '--epochs', '1', '--out', out])).toBe(1);
      expect(await main(['train', 'celsius', '--backend', 'gpu'])).toBe(2);
      expect(await main(['train', 'no-such-model', '--out', out])).toBe(1);
    } finally {
      spy.mockRestore();
      log.mockRestore();
    }
    expect(errors[0]).toMatch(/edgeflow train: --backend tensorflow needs .*neither is installed: run 'npm install @tensorflow\/tfjs-node@4.22.0'/);
    expect(errors[1]).toMatch(/--backend must be one of auto, tensorflow, webgpu, wasm, cpu/);
    expect(errors[2]).toMatch(/unknown model "no-such-model": choose one of celsius, mnist, mnist-transfer, co2, co2-gru, spam/);
  });
});

describe('backend selection when a native package is installed (stand-in binding)', () => {
  // The stand-in registers a 'tensorflow' backend, as the real packages' import does.
  const standIn =
    (installed: Partial<Record<string, boolean>>): NativeLoader =>
    async (pkg) => {
      if (!(pkg in installed)) return null;
      if (!tf.findBackend('tensorflow')) tf.registerBackend('tensorflow', () => new MathBackendCPU());
      return { package: pkg, usingGpu: installed[pkg]! };
    };
  it('takes tfjs-node-gpu when it finds a GPU', async () => {
    const choice = await selectBackend('auto', { requiredKernels: celsiusKernels, loadNative: standIn({ '@tensorflow/tfjs-node-gpu': true }), loadWebGpu: noWebGpu });
    expect(choice).toMatchObject({ backend: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', usingGpu: true });
    expect(choice.reason).toMatch(/found a GPU/);
    expect(tf.getBackend()).toBe('tensorflow');
  });
  it('prefers tfjs-node when the GPU package finds no GPU', async () => {
    const choice = await selectBackend('auto', { requiredKernels: celsiusKernels, loadNative: standIn({ '@tensorflow/tfjs-node-gpu': false, '@tensorflow/tfjs-node': false }), loadWebGpu: noWebGpu });
    expect(choice).toMatchObject({ backend: 'tensorflow', package: '@tensorflow/tfjs-node', usingGpu: false });
  });
  it('uses the GPU package on the CPU when it is the only native one', async () => {
    const choice = await selectBackend('auto', { requiredKernels: celsiusKernels, loadNative: standIn({ '@tensorflow/tfjs-node-gpu': false }), loadWebGpu: noWebGpu });
    expect(choice).toMatchObject({ backend: 'tensorflow', package: '@tensorflow/tfjs-node-gpu', usingGpu: false });
    expect(choice.reason).toMatch(/found no GPU/);
  });
  it('takes tfjs-node when only it is installed', async () => {
    const choice = await selectBackend('tensorflow', { requiredKernels: celsiusKernels, loadNative: standIn({ '@tensorflow/tfjs-node': false }), loadWebGpu: noWebGpu });
    expect(choice).toMatchObject({ backend: 'tensorflow', package: '@tensorflow/tfjs-node' });
    expect(choice.reason).toMatch(/tfjs-node-gpu not installed/);
  });
});

describe('auto order with WebGPU (stand-in adapters)', () => {
  const kernels = ['BatchMatMul'];
  // The real kernels of tfjs-backend-webgpu are not needed here: the stand-ins register cpu as 'webgpu'.
  const adapterStandIn =
    (software: boolean): WebGpuLoader =>
    async () => {
      if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
      tf.registerBackend('webgpu', () => new MathBackendCPU());
      tf.registerKernel({ ...tf.getKernel('BatchMatMul', 'cpu')!, backendName: 'webgpu' });
      return { adapter: { description: software ? 'llvmpipe (stand-in)' : 'Stand-in GPU', vendor: 'x', architecture: software ? 'software' : 'y', software } };
    };
  const native =
    (usingGpu: boolean): NativeLoader =>
    async (pkg) => {
      if (pkg !== (usingGpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node')) return null;
      if (!tf.findBackend('tensorflow')) tf.registerBackend('tensorflow', () => new MathBackendCPU());
      return { package: pkg, usingGpu };
    };
  const none: NativeLoader = async () => null;
  afterEach(() => {
    tf.unregisterKernel('BatchMatMul', 'webgpu');
    tf.removeBackend('webgpu');
  });

  it('a GPU adapter comes after tfjs-node-gpu with a GPU and before tfjs-node', async () => {
    expect((await selectBackend('auto', { requiredKernels: kernels, loadNative: native(true), loadWebGpu: adapterStandIn(false) })).package).toBe('@tensorflow/tfjs-node-gpu');
    const gpu = await selectBackend('auto', { requiredKernels: kernels, loadNative: native(false), loadWebGpu: adapterStandIn(false) });
    expect(gpu).toMatchObject({ backend: 'webgpu', usingGpu: true, adapter: { description: 'Stand-in GPU' } });
    expect(gpu.reason).toMatch(/^GPU 'Stand-in GPU' \(x, y\): a GPU adapter that runs every kernel/);
    expect(tf.getBackend()).toBe('webgpu');
  });
  it('a software adapter only with allowSoftwareGpu, after tfjs-node, named with why', async () => {
    const refused = await selectBackend('auto', { requiredKernels: kernels, loadNative: none, loadWebGpu: adapterStandIn(true) });
    expect(refused.backend).toBe('wasm');
    expect(refused.reason).toMatch(/webgpu: Dawn found only a software adapter 'llvmpipe \(stand-in\)' .*--allow-software-gpu trains on it/);
    const native = await selectBackend('auto', { requiredKernels: kernels, loadNative: nativeCpu, loadWebGpu: adapterStandIn(true), allowSoftwareGpu: true });
    expect(native.package).toBe('@tensorflow/tfjs-node');
    const allowed = await selectBackend('auto', { requiredKernels: kernels, loadNative: none, loadWebGpu: adapterStandIn(true), allowSoftwareGpu: true });
    expect(allowed).toMatchObject({ backend: 'webgpu', usingGpu: false });
    expect(allowed.reason).toMatch(/^software adapter 'llvmpipe \(stand-in\)' \(x, software\): allowed by --allow-software-gpu/);
    await expect(selectBackend('webgpu', { requiredKernels: kernels, loadWebGpu: adapterStandIn(true) })).rejects.toThrow(
      /--backend webgpu cannot train this model: Dawn found only a software adapter .*--allow-software-gpu/,
    );
  });
  const nativeCpu = native(false);
});
