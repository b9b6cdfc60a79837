// The converter's in-memory model: what every reader produces and every later stage consumes.
// Weights are decoded to plain typed arrays (quantized sources are dequantized), so the
// quantize stage always starts from float32 values.
import type { ModelJsonBody } from '../shared/schemas/model-json.ts';
import type { DecodedWeight } from '../shared/weights.ts';

/** Relative path → bytes: a folder, a zip's entries, or an upload's objects. */
export type FileSet = Map<string, Uint8Array>;

export type SourceFormat = 'tfjs-layers' | 'tfjs-graph' | 'keras-h5' | 'keras-v3';

export type { DecodedWeight };

export interface DecodedModel {
  format: 'layers-model' | 'graph-model';
  /** model.json fields other than weightsManifest (modelTopology, signature, format, ...). */
  modelJson: ModelJsonBody;
  /** In the order stock TF.js expects them in the weights manifest. */
  weights: DecodedWeight[];
  source: {
    format: SourceFormat;
    files: string[];
    bytes: number;
    generatedBy?: string;
  };
}
