// The converter's in-memory model: what every reader produces and every later stage consumes.
// Weights are decoded to plain typed arrays (quantized sources are dequantized), so the
// quantize stage always starts from float32 values.
import type { ModelJsonBody } from '../shared/schemas/model-json.ts';

/** Relative path → bytes: a folder, a zip's entries, or an upload's objects. */
export type FileSet = Map<string, Uint8Array>;

export type SourceFormat = 'tfjs-layers' | 'tfjs-graph' | 'keras-h5' | 'keras-v3';

export interface DecodedWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  /** float32 → Float32Array, int32 → Int32Array, bool → Uint8Array (0/1). */
  values: Float32Array | Int32Array | Uint8Array;
  /** The affine grid a uint8 / uint16 source stored this weight on; re-quantizing to it is lossless. */
  sourceGrid?: { dtype: 'uint8' | 'uint16'; scale: number; min: number };
}

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
