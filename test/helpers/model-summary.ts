// A runtime-neutral digest of a DecodedModel (names, shapes, dtypes, a checksum of every value),
// computed the same way in Node and inside workerd so the two conversions can be compared.
import type { DecodedModel } from '../../converter/model.ts';

export interface ModelSummary {
  format: string;
  sourceFormat: string;
  generatedBy?: string;
  weightCount: number;
  names: string[];
  shapes: number[][];
  dtypes: string[];
  /** FNV-1a over every weight's bytes, in order, as 8 hex digits. */
  checksum: string;
  /** JSON of the modelTopology, for an exact comparison. */
  topology: string;
}

export function checksum(model: DecodedModel): string {
  let hash = 0x811c9dc5;
  for (const weight of model.weights) {
    const bytes = new Uint8Array(weight.values.buffer, weight.values.byteOffset, weight.values.byteLength);
    for (let i = 0; i < bytes.length; i++) {
      hash ^= bytes[i]!;
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
  }
  return hash.toString(16).padStart(8, '0');
}

export function summarizeModel(model: DecodedModel): ModelSummary {
  return {
    format: model.format,
    sourceFormat: model.source.format,
    generatedBy: model.source.generatedBy,
    weightCount: model.weights.length,
    names: model.weights.map((w) => w.name),
    shapes: model.weights.map((w) => w.shape),
    dtypes: model.weights.map((w) => w.dtype),
    checksum: checksum(model),
    topology: JSON.stringify(model.modelJson.modelTopology),
  };
}
