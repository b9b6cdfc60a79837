// The single-core SIMD bound the benchmarks hold MobileNetV2 against (bench:models, bench:serve):
// the backend's best case, a 1024³ float32 matMul (XNNPACK GEMM), timed round by round between the
// model's own rounds so that both see the same machine, and compared by the same statistic (the
// median of each); and a layers model's multiply-adds.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelJson } from '../shared/schemas/model-json.ts';
import { quantile } from './stats.ts';

const N = 1024;

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

export interface MatmulBound {
  /** One 1024³ matMul, read back: its wall time in ms. */
  round(): Promise<number>;
  dispose(): void;
}

/**
 * The bound's kernel, C = A·B at 1024³ float32. B is the same tensor on every call, as a model's
 * weights are: the wasm backend caches XNNPACK's operator, with its packed copy of B, on B's
 * tensor id, so B is packed on the first call only (as a model's kernels are on its first
 * prediction). Call `round()` between the model's rounds.
 */
export async function matmulBound(): Promise<MatmulBound> {
  const a = tf.randomUniform([N, N]);
  const b = tf.randomUniform([N, N]);
  const round = async () => {
    const start = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    return performance.now() - start;
  };
  await round(); // packs B
  return { round, dispose: () => tf.dispose([a, b]) };
}

export interface BoundShare {
  /** The model's GFLOP/s at its median time. */
  gflops: number;
  /** The bound's GFLOP/s at its median time, over the same rounds. */
  boundGflops: number;
  /** gflops / boundGflops. */
  share: number;
}

/** A model's rate against the bound's, each from the median of its interleaved rounds. */
export function boundShare(macs: number, modelMs: readonly number[], boundMs: readonly number[]): BoundShare {
  const gflops = (2 * macs) / quantile(modelMs, 0.5) / 1e6;
  const boundGflops = (2 * N ** 3) / quantile(boundMs, 0.5) / 1e6;
  return { gflops, boundGflops, share: gflops / boundGflops };
}
