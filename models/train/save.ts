// Saves a trained layers model as TF.js files (model.json + one weights shard), to a local
// folder (--out) or under uploads/<name>/<uploadId>/ of an object store (--upload).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { keys } from '../../shared/names.ts';
import type { ObjectStore } from '../../shared/store/types.ts';

export const WEIGHTS_FILE = 'group1-shard1of1.bin';

/** model.json and the weights file of a layers model, in memory, with userDefinedMetadata set. */
export async function modelFiles(model: LayersModel, userDefinedMetadata: Record<string, unknown>): Promise<Map<string, Uint8Array>> {
  model.setUserDefinedMetadata(userDefinedMetadata);
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  });
  if (!saved?.weightSpecs || saved.weightData === undefined) throw new Error('the model saved no weights');
  const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(saved.weightData));
  const modelJson: tf.io.ModelJSON = {
    modelTopology: saved.modelTopology!,
    format: saved.format ?? 'layers-model',
    generatedBy: saved.generatedBy ?? 'TensorFlow.js tfjs-layers',
    convertedBy: null,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: saved.weightSpecs }],
    ...(saved.trainingConfig ? { trainingConfig: saved.trainingConfig } : {}),
    ...(saved.userDefinedMetadata ? { userDefinedMetadata: saved.userDefinedMetadata } : {}),
  };
  return new Map([
    [WEIGHTS_FILE, weights],
    ['model.json', new TextEncoder().encode(JSON.stringify(modelJson))],
  ]);
}

export function writeFolder(folder: string, files: Map<string, Uint8Array>): string[] {
  mkdirSync(folder, { recursive: true });
  return [...files].map(([name, bytes]) => {
    const path = join(folder, name);
    writeFileSync(path, bytes);
    return path;
  });
}

/** An upload id that sorts by time: 20261129T165012Z-3f9a1c. */
export function newUploadId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`;
}

/** Writes the files under uploads/<name>/<uploadId>/, model.json last (its arrival completes the upload). */
export async function uploadModel(store: ObjectStore, name: string, files: Map<string, Uint8Array>, uploadId = newUploadId()): Promise<{ uploadId: string; keys: string[] }> {
  const prefix = keys.uploadPrefix(name, uploadId);
  const order = [...files.keys()].sort((a, b) => Number(a === 'model.json') - Number(b === 'model.json'));
  const written: string[] = [];
  for (const file of order) {
    const key = `${prefix}${file}`;
    await store.put(key, files.get(file)!, { contentType: file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    written.push(key);
  }
  return { uploadId, keys: written };
}
