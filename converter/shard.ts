// Splits encoded weights into shard files and writes the model.json that names them,
// exactly as tensorflowjs_converter lays them out (group1-shardKofN.bin).
import type { ModelJson } from '../shared/schemas/model-json.ts';
import type { DecodedModel } from './model.ts';
import type { EncodedWeights } from './encode.ts';

export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

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
export function parseByteSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i.exec(text.trim());
  if (!match) throw new Error(`bad size ${JSON.stringify(text)}: use bytes or a unit like 4MiB`);
  const units: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
  const bytes = Math.round(Number(match[1]) * units[(match[2] ?? 'b').toLowerCase()]!);
  if (bytes < 1024) throw new Error(`size ${text} is too small: shards must be at least 1 KiB`);
  return bytes;
}
