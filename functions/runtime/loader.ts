// Loads one published version from the store: model.json and every shard fetched in
// parallel, each checked against the size and sha256 recorded in edgeflow.json, then
// handed to shared/model-loader.ts (stock loadLayersModel / loadGraphModel), then one
// warm-up prediction so the first real request does not pay kernel set-up.
import * as tf from '@tensorflow/tfjs-core';
import { sha256Hex } from '../../shared/hash.ts';
import { loadModel, type LoadedModel } from '../../shared/model-loader.ts';
import { keys } from '../../shared/names.ts';
import type { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { ModelJson } from '../../shared/schemas/model-json.ts';
import type { ObjectStore, StoredObject } from '../../shared/store/types.ts';

export interface LoadTimings {
  /** Fetching model.json and the shards (in parallel) and checking their sha256. */
  fetchMs: number;
  /** Building the model from the bytes (stock TF.js loaders, dequantizing). */
  buildMs: number;
  warmUpMs: number;
}

export interface LoadedVersion {
  model: LoadedModel;
  timings: LoadTimings;
}

async function fetchVerified(store: ObjectStore, name: string, version: number, file: string, edgeflow: EdgeflowJson, prefetched?: Promise<StoredObject | null>): Promise<Uint8Array> {
  const expected = edgeflow.files[file];
  if (!expected) throw new Error(`${file} is not listed in edgeflow.json`);
  const object = await (prefetched ?? store.get(keys.versionFile(name, version, file)));
  if (!object) throw new Error(`${file} is missing from the store`);
  if (object.body.byteLength !== expected.size) throw new Error(`${file} has ${object.body.byteLength} bytes, edgeflow.json says ${expected.size}`);
  const digest = await sha256Hex(object.body);
  if (digest !== expected.sha256) throw new Error(`${file} fails its sha256 check (got ${digest.slice(0, 12)}..., edgeflow.json says ${expected.sha256.slice(0, 12)}...)`);
  return object.body;
}

/** Zeros shaped like each input (batch 1); null when a non-batch dimension is unknown. */
function warmUpInputs(model: LoadedModel): tf.Tensor[] | null {
  const shapes = model.inputs.map((input) => input.shape.map((d, i) => (d === -1 && i === 0 ? 1 : d)));
  if (shapes.some((shape) => shape.some((d) => d < 0))) return null;
  return model.inputs.map((input, i) => tf.zeros(shapes[i]!, input.dtype === 'int32' || input.dtype === 'bool' ? input.dtype : 'float32'));
}

export interface LoadOptions {
  warmUp: boolean;
  /** model.json already requested (in parallel with edgeflow.json), to save a round trip. */
  modelJson?: Promise<StoredObject | null>;
}

export async function loadVersion(store: ObjectStore, name: string, version: number, edgeflow: EdgeflowJson, options: LoadOptions): Promise<LoadedVersion> {
  const start = performance.now();
  // edgeflow.json lists every file, so the shards are fetched together with model.json.
  const shardPaths = Object.keys(edgeflow.files).filter((file) => file !== 'model.json');
  const fetches = [fetchVerified(store, name, version, 'model.json', edgeflow, options.modelJson), ...shardPaths.map((path) => fetchVerified(store, name, version, path, edgeflow))];
  const [modelJsonBytes, ...shardBytes] = await Promise.all(fetches);
  const shards = new Map(shardPaths.map((path, i) => [path, shardBytes[i]!]));
  const parsed = ModelJson.safeParse(JSON.parse(new TextDecoder().decode(modelJsonBytes)));
  if (!parsed.success) throw new Error(`model.json is malformed: ${parsed.error.issues[0]?.message}`);
  const modelJson = parsed.data;
  for (const path of modelJson.weightsManifest.flatMap((group) => group.paths)) {
    if (!shards.has(path)) throw new Error(`${path} is not listed in edgeflow.json`);
  }
  const verified = performance.now();

  // A layers model the conversion checked compiled (edgeflow.json `serving`) runs as fused graph ops.
  const model = await loadModel(modelJson, (path) => shards.get(path)!, { compile: edgeflow.serving?.runtime === 'compiled-graph' });
  const built = performance.now();
  try {
    if (options.warmUp) {
      const inputs = warmUpInputs(model);
      if (inputs) {
        try {
          const outputs = await model.predict(inputs);
          await Promise.all(outputs.map((t) => t.data()));
          tf.dispose(outputs);
        } finally {
          tf.dispose(inputs);
        }
      }
    }
  } catch (error) {
    model.dispose();
    throw new Error(`warm-up prediction failed: ${(error as Error).message}`);
  }
  // Exactly 0 when no warm-up ran.
  const warmed = options.warmUp ? performance.now() : built;
  return {
    model,
    timings: { fetchMs: verified - start, buildMs: built - verified, warmUpMs: warmed - built },
  };
}
