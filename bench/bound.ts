// The single-core SIMD bound the benchmarks hold MobileNetV2 against (bench:models, bench:serve):
// the backend's best case, a 1024³ float32 matMul (XNNPACK GEMM), and a layers model's multiply-adds.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelJson } from '../shared/schemas/model-json.ts';

/** Multiply-adds of a layers model's Conv2D / DepthwiseConv2D / Dense layers at batch 1. */
export async function layersMacs(modelJson: ModelJson): Promise<number> {
  const model = await tfl.models.modelFromJSON({ modelTopology: modelJson.modelTopology } as tf.io.ModelJSON);
  let macs = 0;
  for (const layer of model.layers) {
    const out = layer.outputShape as number[];
    const kernel = layer.getWeights()[0]?.shape ?? [];
    const spatial = out.slice(1, -1).reduce((a, b) => a * b, 1);
    if (layer.getClassName() === 'Conv2D') macs += spatial * kernel.reduce((a, b) => a * b, 1);
    if (layer.getClassName() === 'DepthwiseConv2D') macs += spatial * kernel.reduce((a, b) => a * b, 1);
    if (layer.getClassName() === 'Dense') macs += kernel.reduce((a, b) => a * b, 1);
  }
  model.dispose();
  return macs;
}

/** The backend's best case: GFLOP/s of a 1024x1024x1024 float32 matMul (XNNPACK GEMM), best of 5. */
export async function matmulBound(): Promise<number> {
  const a = tf.randomUniform([1024, 1024]);
  const b = tf.randomUniform([1024, 1024]);
  let best = Infinity;
  for (let i = 0; i < 6; i++) {
    const start = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i > 0) best = Math.min(best, performance.now() - start);
  }
  tf.dispose([a, b]);
  return (2 * 1024 ** 3) / (best / 1000) / 1e9;
}
