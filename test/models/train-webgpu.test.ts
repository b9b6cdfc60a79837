// Training on WebGPU through Dawn. Where a Vulkan driver gives Dawn an adapter (here: Mesa's
// software lavapipe from `npm run setup:gpu`, so --allow-software-gpu), the celsius model (lab 1)
// trains on it end to end, and the MNIST CNN's gradients and losses over a few Adam steps match the
// cpu backend's from the same weights and batches: gradients within 1e-4 of the largest gradient of
// each weight, losses within 1e-4 relative. Without an adapter those cases skip, naming the reason;
// the adapter classification runs everywhere (the choice order: train-backend.test.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { celsius } from '../../models/celsius.ts';
import { loadMnist } from '../../models/data/mnist.ts';
import { mnist } from '../../models/mnist.ts';
import { installFastGradients } from '../../models/train/fast-gradients.ts';
import { runTraining } from '../../models/train/run.ts';
import { importWebGpu, isSoftwareAdapter, vulkanDrivers } from '../../models/train/webgpu.ts';
import type { ModelDefinition } from '../../models/types.ts';

const probe = await importWebGpu();
const skipReason = probe.adapter ? '' : `no WebGPU adapter: ${probe.reason}`;
if (skipReason) console.warn(`train-webgpu: skipping the Dawn cases: ${skipReason}`);

afterEach(async () => {
  if (tf.findBackend('tensorflow')) tf.removeBackend('tensorflow');
  await tf.setBackend('cpu');
});

describe('WebGPU adapters', () => {
  it('tells a software rasterizer from a GPU', () => {
    expect(isSoftwareAdapter({ vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)', isFallbackAdapter: true })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'ada', description: 'NVIDIA GeForce RTX 4090', isFallbackAdapter: false })).toBe(false);
    expect(isSoftwareAdapter({ vendor: 'intel', architecture: 'gen-12lp', description: 'Intel(R) UHD Graphics 770' })).toBe(false);
  });
  it('finds the Vulkan drivers from the environment or the standard folders', () => {
    expect(vulkanDrivers({ VK_ICD_FILENAMES: '/a/lvp_icd.json:/b/nvidia_icd.json' })).toEqual(['/a/lvp_icd.json', '/b/nvidia_icd.json']);
    expect(vulkanDrivers({ VK_DRIVER_FILES: '/c/x.json', VK_ICD_FILENAMES: '/a/y.json' })).toEqual(['/c/x.json']);
    for (const file of vulkanDrivers({})) expect(file).toMatch(/\/vulkan\/icd\.d\/[^/]+\.json$/);
  });
});

/** Copies of the weights as plain arrays, so that a model on another backend can start from them. */
const snapshot = async (model: tfl.LayersModel) => Promise.all(model.getWeights().map(async (w) => ({ values: await w.data(), shape: w.shape })));
type Weights = Awaited<ReturnType<typeof snapshot>>;

/** Loss and gradients of `definition` from `weights` on one batch, on `backend`, then `steps` Adam losses. */
async function run(backend: string, definition: ModelDefinition, weights: Weights, batches: Array<{ x: Float32Array; y: Float32Array; xShape: number[]; yShape: number[] }>) {
  await tf.setBackend(backend);
  const model = definition.build({ dropout: 0 });
  model.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
  const lossFn = (y: tf.Tensor, p: tf.Tensor) =>
    definition.loss === 'meanSquaredError' ? tf.losses.meanSquaredError(y, p) : tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1))), -1)));
  const first = batches[0]!;
  const [x, y] = [tf.tensor(first.x, first.xShape), tf.tensor(first.y, first.yShape)];
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => lossFn(y, model.predict(x) as tf.Tensor) as tf.Scalar, variables);
  const gradients = await Promise.all(variables.map((v) => grads[v.name]!.data()));
  const loss = (await value.data())[0]!;
  tf.dispose([x, y, value, ...Object.values(grads)]);
  model.compile({ optimizer: tf.train.adam(0.001), loss: definition.loss });
  const losses: number[] = [];
  for (const batch of batches) {
    const [bx, by] = [tf.tensor(batch.x, batch.xShape), tf.tensor(batch.y, batch.yShape)];
    losses.push((await model.trainOnBatch(bx, by)) as number);
    tf.dispose([bx, by]);
  }
  model.dispose();
  return { loss, gradients, losses };
}

const relativeGap = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let gap = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    gap = Math.max(gap, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(a[i]!));
  }
  return gap / (scale || 1);
};

describe.skipIf(Boolean(skipReason))(`training on Dawn's adapter${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let restore: () => void;
  beforeAll(() => {
    restore = installFastGradients();
    return () => restore();
  });

  it('the MNIST CNN: gradients and 4 Adam steps on webgpu match cpu', async () => {
    await tf.setBackend('cpu');
    const data = await loadMnist({ limit: 32 * 4, seed: 7, validationSplit: 0 });
    const batches = [];
    for (let b = 0; b < 4; b++) {
      const x = tf.slice(data.train.x, b * 32, 32);
      const y = tf.slice(data.train.y, b * 32, 32);
      batches.push({ x: (await x.data()) as Float32Array, y: (await y.data()) as Float32Array, xShape: x.shape, yShape: y.shape });
      tf.dispose([x, y]);
    }
    tf.dispose([data.train.x, data.train.y, data.test.x, data.test.y, ...(data.validation ? [data.validation.x, data.validation.y] : [])]);
    const seedModel = mnist.build({ dropout: 0 });
    const weights = await snapshot(seedModel);
    seedModel.dispose();

    const cpu = await run('cpu', mnist, weights, batches);
    const gpu = await run('webgpu', mnist, weights, batches);
    expect(Math.abs(gpu.loss - cpu.loss) / cpu.loss).toBeLessThan(1e-4);
    cpu.gradients.forEach((g, i) => expect(relativeGap(g, gpu.gradients[i]!), `gradient ${i}`).toBeLessThan(1e-4));
    gpu.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]!) / cpu.losses[i]!, `step ${i}`).toBeLessThan(1e-4));
    expect(cpu.losses[3]!).toBeLessThan(cpu.losses[0]!);
  });

  it('lab 1 (celsius): the training job runs on webgpu, names the adapter, and converges', async () => {
    const lines: string[] = [];
    const folder = mkdtempSync(join(tmpdir(), 'edgeflow-train-webgpu-'));
    const result = await runTraining({
      model: 'celsius',
      backend: 'webgpu',
      allowSoftwareGpu: true,
      epochs: 30,
      learningRate: 0.2,
      logdir: join(folder, 'logs'),
      log: (line) => lines.push(line),
      progress: { write: () => {}, isTTY: false },
    });
    expect(result.backend.backend).toBe('webgpu');
    expect(lines).toContainEqual(
      expect.stringContaining(`backend: webgpu (@tensorflow/tfjs-backend-webgpu (Dawn)): ${probe.adapter!.software ? 'software adapter' : 'GPU'} '${probe.adapter!.description}'`),
    );
    expect(result.record).toMatchObject({ backend: 'webgpu', adapter: probe.adapter!.description, usingGpu: !probe.adapter!.software });
    expect(result.record.metrics.mae).toBeLessThan(1);
    result.model.dispose();
  });

  it('lab 1 (celsius): gradients and 20 Adam steps on webgpu match cpu', async () => {
    await tf.setBackend('cpu');
    const seedModel = celsius.build({});
    const weights = await snapshot(seedModel);
    seedModel.dispose();
    const batches = Array.from({ length: 20 }, (_, b) => {
      const x = Float32Array.from({ length: 16 }, (_, i) => -100 + (((b * 16 + i) * 37) % 200));
      return { x, y: x.map((c) => c * 1.8 + 32), xShape: [16, 1], yShape: [16, 1] };
    });
    const cpu = await run('cpu', celsius, weights, batches);
    const gpu = await run('webgpu', celsius, weights, batches);
    cpu.gradients.forEach((g, i) => expect(relativeGap(g, gpu.gradients[i]!)).toBeLessThan(1e-4));
    gpu.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]!) / cpu.losses[i]!, `step ${i}`).toBeLessThan(1e-4));
  });
});
