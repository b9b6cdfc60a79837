// Splits encoded weights into shard files and writes the model.json that names them,
// exactly as tensorflowjs_converter lays them out (group1-shardKofN.bin).
import type { ModelJson } from '../shared/schemas/model-json.ts';
import type { DecodedModel } from './model.ts';
import type { EncodedWeights } from './encode.ts';
import { DEFAULT_SHARD_BYTES } from '../shared/options/conversion.ts';

export interface ModelFiles {
  modelJson: ModelJson;
  /** File name → bytes, model.json included. Shards are views into the encoded buffer. */
  files: Map<string, Uint8Array>;
}

export function shardModel(model: DecodedModel, encoded: EncodedWeights, shardBytes = DEFAULT_SHARD_BYTES): ModelFiles {
  const count = Math.max(1, Math.ceil(encoded.data.byteLength / shardBytes));
  const files = new Map<string, Uint8Array>();
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = `group1-shard${i + 1}of${count}.bin`;
    paths.push(path);
    files.set(path, encoded.data.subarray(i * shardBytes, Math.min((i + 1) * shardBytes, encoded.data.byteLength)));
  }
  const modelJson: ModelJson = {
    ...model.modelJson,
    format: model.format,
    convertedBy: 'edgeflow',
    weightsManifest: [{ paths, weights: encoded.specs }],
  };
  files.set('model.json', new TextEncoder().encode(JSON.stringify(modelJson)));
  return { modelJson, files };
}

/** Parses sizes like 4194304, 4MiB, 512KiB, 1MB. */
