// Saves a trained layers model as TF.js files (model.json + one weights shard) with held-out
// inputs beside it (calibration.json, which the converter calibrates on), to a local folder
// (--out) or under uploads/<name>/<uploadId>/ of an object store (--upload).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { uploadKeys, writeUpload } from '../../shared/bucket/uploads.ts';
import type { ObjectStore } from '../../shared/store/types.ts';
import type { ImageInput } from '../../shared/schemas/edgeflow-json.ts';

export const WEIGHTS_FILE = 'group1-shard1of1.bin';
/** Held-out inputs written beside a trained model, at most. */
export const MAX_HELD_OUT_SAMPLES = 64;

/** model.json and the weights file of a layers model, in memory, as tfjs's own save writes them. */
export async function modelFiles(model: LayersModel, userDefinedMetadata?: Record<string, unknown>): Promise<Map<string, Uint8Array>> {
  if (userDefinedMetadata) model.setUserDefinedMetadata(userDefinedMetadata);
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

/**
 * What `:classify` needs, for model.json's userDefinedMetadata (the converter records it in
 * edgeflow.json unless --labels / --image say otherwise): the class names when they count the
 * single output's units, or two names for a one-unit sigmoid (negative, then positive), and an
 * image spec for an [H, W, 1|3] input, whose pixels the training data sets scale to 0..1 (pixel / 255).
 */
export function servingMetadata(model: LayersModel, classes: string[] | undefined): { labels?: string[]; image?: ImageInput } {
  const units = model.outputs.length === 1 ? model.outputs[0]!.shape.at(-1) : undefined;
  const labels = classes && (classes.length === units || (units === 1 && classes.length === 2)) ? { labels: classes } : {};
  const input = model.inputs.length === 1 ? model.inputs[0]!.shape : [];
  const [, height, width, depth] = input;
  const isImage = input.length === 4 && (height ?? 0) > 0 && (width ?? 0) > 0 && (depth === 1 || depth === 3);
  return isImage ? { ...labels, image: { height: height!, width: width!, channels: depth === 1 ? 'grayscale' : 'rgb', scale: 1 / 255, offset: 0 } } : labels;
}

/**
 * The first held-out inputs (at most MAX_HELD_OUT_SAMPLES rows of x) as the converter's
 * calibration.json (TF Serving's `{"instances": [...]}`): float32 values in the 9 digits that
 * give them back exactly.
 */
export async function heldOutCalibration(x: tf.Tensor, max = MAX_HELD_OUT_SAMPLES): Promise<Uint8Array> {
  const rows = tf.slice(x, 0, Math.min(max, x.shape[0]!));
  const instances = await rows.array();
  rows.dispose();
  const text = JSON.stringify({ instances }, (_, value) => (typeof value === 'number' && !Number.isInteger(value) ? Number(value.toPrecision(9)) : value));
  return new TextEncoder().encode(text);
}

export function writeFolder(folder: string, files: Map<string, Uint8Array>): string[] {
  mkdirSync(folder, { recursive: true });
  return [...files].map(([name, bytes]) => {
    const path = join(folder, name);
    writeFileSync(path, bytes);
    return path;
  });
}

/**
 * Writes the files under uploads/<name>/<uploadId>/ and then the upload manifest
 * (shared/bucket/uploads.ts writeUpload, the same as the admin API): the manifest's arrival is
 * what triggers the conversion. keys: the model files' keys, model.json last.
 */
export async function uploadModel(store: ObjectStore, name: string, files: Map<string, Uint8Array>): Promise<{ uploadId: string; keys: string[]; manifestKey: string }> {
  const { uploadId, manifestKey } = await writeUpload(store, name, files, { source: 'edgeflow train' });
  const order = [...files.keys()].sort((a, b) => Number(a === 'model.json') - Number(b === 'model.json'));
  return { uploadId, keys: order.map((file) => uploadKeys.file(name, uploadId, file)), manifestKey };
}
