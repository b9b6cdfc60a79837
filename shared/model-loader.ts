// Loads a TF.js model from model.json + shard bytes with the stock loaders
// (tf.loadLayersModel / tf.loadGraphModel through an in-memory IO handler) and gives
// both kinds one predict interface. Used by the converter's verify stage and the runtime.
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import { modelKind, type ModelJson } from './schemas/model-json.ts';
import type { TensorSignature } from './schemas/edgeflow-json.ts';

export interface LoadedModel {
  kind: 'layers-model' | 'graph-model';
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** Inputs in signature order; outputs in signature order. The caller disposes them. */
  predict(inputs: tf.Tensor[]): Promise<tf.Tensor[]>;
  dispose(): void;
}

/** Shards of each group concatenated, in manifest order, as the stock HTTP loader does. */
function weightData(modelJson: ModelJson, shard: (path: string) => Uint8Array): ArrayBuffer {
  const parts = modelJson.weightsManifest.flatMap((group) => group.paths.map(shard));
  const total = parts.reduce((sum, p) => sum + p.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out.buffer;
}

export function memoryHandler(modelJson: ModelJson, shard: (path: string) => Uint8Array): tf.io.IOHandler {
  return {
    load: () =>
      tf.io.getModelArtifactsForJSON(modelJson as unknown as tf.io.ModelJSON, async (manifest) => [
        manifest.flatMap((group) => group.weights),
        weightData(modelJson, shard),
      ]),
  };
}

const dims = (shape: readonly (number | null)[] | undefined): number[] => (shape ?? []).map((d) => (d === null || d === undefined || d < 0 ? -1 : d));

function graphSignature(model: GraphModel): { inputs: TensorSignature[]; outputs: TensorSignature[] } {
  return {
    inputs: model.inputs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'float32', shape: dims(t.shape) })),
    outputs: model.outputs.map((t) => ({ name: t.name, dtype: t.dtype ?? 'float32', shape: t.shape ? dims(t.shape) : [] })),
  };
}

function layersSignature(model: LayersModel): { inputs: TensorSignature[]; outputs: TensorSignature[] } {
  return {
    inputs: model.inputs.map((t, i) => ({ name: model.inputNames[i] ?? t.name, dtype: t.dtype, shape: dims(t.shape) })),
    outputs: model.outputs.map((t, i) => ({ name: model.outputNames[i] ?? t.name, dtype: t.dtype, shape: dims(t.shape) })),
  };
}

const asList = (result: tf.Tensor | tf.Tensor[] | tf.NamedTensorMap): tf.Tensor[] =>
  result instanceof tf.Tensor ? [result] : Array.isArray(result) ? result : Object.values(result);

export async function loadModel(modelJson: ModelJson, shard: (path: string) => Uint8Array): Promise<LoadedModel> {
  const handler = memoryHandler(modelJson, shard);
  if (modelKind(modelJson) === 'layers-model') {
    const model = await loadLayersModel(handler);
    return {
      kind: 'layers-model',
      ...layersSignature(model),
      predict: async (inputs) => asList(model.predict(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor | tf.Tensor[]),
      dispose: () => model.dispose(),
    };
  }
  const model = await loadGraphModel(handler);
  const signature = graphSignature(model);
  // Graph models without control flow run synchronously; the first dynamic-op error switches to executeAsync.
  let dynamic = false;
  return {
    kind: 'graph-model',
    ...signature,
    predict: async (inputs) => {
      const feed: tf.NamedTensorMap = {};
      signature.inputs.forEach((input, i) => (feed[input.name] = inputs[i]!));
      if (!dynamic) {
        try {
          return asList(model.execute(feed));
        } catch (error) {
          if (!/executeAsync/.test((error as Error).message)) throw error;
          dynamic = true;
        }
      }
      return asList(await model.executeAsync(feed));
    },
    dispose: () => model.dispose(),
  };
}
