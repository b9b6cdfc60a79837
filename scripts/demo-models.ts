// Demo models built in code with fixed weights, so `npm start`, the tests and the
// benchmarks have models on any clone (no ../shared/fixtures needed):
//   - iris-dense: Dense(4→16 relu) → Dense(16→3 softmax), the "tiny dense model"
//   - mnist-cnn:  Conv(8) → MaxPool → Conv(16) → MaxPool → Flatten → Dense(10 softmax), on 28x28x1
// Weights come from a seeded generator: the same bytes on every run. Node only (needs a backend).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { FileSet } from '../converter/model.ts';

export interface DemoModel {
  name: string;
  description: string;
  files: FileSet;
  /** The converter's --quantize for it. */
  quantize: string;
  /** A valid example instance (TF Serving row format) for curl examples and benches. */
  example: () => unknown;
}

/** mulberry32: a tiny deterministic PRNG. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function setSeededWeights(model: tfl.LayersModel, seed: number): void {
  const random = seeded(seed);
  const weights = model.getWeights().map((w) => {
    const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1;
    const scale = w.shape.length > 1 ? Math.sqrt(2 / fanIn) : 0.05;
    const values = new Float32Array(w.size);
    for (let i = 0; i < values.length; i++) values[i] = (random() * 2 - 1) * scale;
    return tf.tensor(values, w.shape);
  });
  model.setWeights(weights);
  tf.dispose(weights);
}

/** model.json + weights.bin of a layers model, as tfjs's own save would write them. */
async function toFiles(model: tfl.LayersModel): Promise<FileSet> {
  let files: FileSet = new Map();
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData as ArrayBuffer;
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      files = new Map([
        ['model.json', new TextEncoder().encode(JSON.stringify(modelJson))],
        ['weights.bin', new Uint8Array(weightData)],
      ]);
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  return files;
}

export async function buildIrisDense(): Promise<FileSet> {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [4], units: 16, activation: 'relu', name: 'hidden' }), tfl.layers.dense({ units: 3, activation: 'softmax', name: 'species' })],
  });
  setSeededWeights(model, 7);
  try {
    return await toFiles(model);
  } finally {
    model.dispose();
  }
}

export async function buildMnistCnn(): Promise<FileSet> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 3, activation: 'relu', name: 'conv1' }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 3, activation: 'relu', name: 'conv2' }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 10, activation: 'softmax', name: 'digits' }),
    ],
  });
  setSeededWeights(model, 11);
  try {
    return await toFiles(model);
  } finally {
    model.dispose();
  }
}

export async function demoModels(): Promise<DemoModel[]> {
  return [
    {
      name: 'iris-dense',
      description: 'tiny dense classifier: 4 features → 3 classes (fixed seeded weights)',
      files: await buildIrisDense(),
      quantize: 'float16',
      example: () => [5.1, 3.5, 1.4, 0.2],
    },
    {
      name: 'mnist-cnn',
      description: 'MNIST-size CNN: 28x28x1 image → 10 digits (fixed seeded weights, uint8)',
      files: await buildMnistCnn(),
      quantize: 'uint8',
      example: () => {
        const random = seeded(3);
        return Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [Math.round(random() * 100) / 100]));
      },
    },
  ];
}
