// The Keras layer classes edgeflow converts, and for each one the weights TF.js (tfjs-layers 4.22)
// creates for it, in the order it creates them. Names are relative to the layer: TF.js names a
// weight `<layer name>/<weight name>`; Bidirectional and TimeDistributed nest their inner layer.
import type { KerasLayer } from './config-types.ts';

/** Layers that hold no weights and that tfjs-layers 4.22 deserializes. */
const WEIGHTLESS = new Set([
  'InputLayer',
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'ThresholdedReLU',
  'MaxPooling1D',
  'MaxPooling2D',
  'MaxPooling3D',
  'AveragePooling1D',
  'AveragePooling2D',
  'AveragePooling3D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'Flatten',
  'Reshape',
  'Permute',
  'RepeatVector',
  'Masking',
  'Dropout',
  'SpatialDropout1D',
  'GaussianDropout',
  'GaussianNoise',
  'AlphaDropout',
  'Add',
  'Concatenate',
  'Multiply',
  'Average',
  'Maximum',
  'Minimum',
  'Dot',
  'ZeroPadding2D',
  'Cropping2D',
  'UpSampling2D',
  'Rescaling',
  'CenterCrop',
  'Resizing',
  // Plain TF calls Keras 2 records as layers; TF.js layers lacks them, the graph compiler lowers them.
  'TFOpLambda',
  'SlicingOpLambda',
]);

const MODELS = new Set(['Sequential', 'Functional', 'Model']);

const bias = (config: Record<string, unknown>): string[] => (config.use_bias === false ? [] : ['bias']);

/** Own weights of a layer that is not a wrapper or a nested model. undefined: not a class edgeflow converts. */
function simpleWeights(layer: KerasLayer): string[] | undefined {
  const c = layer.config;
  switch (layer.class_name) {
    case 'Dense':
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
    case 'Conv2DTranspose':
    case 'Conv3DTranspose':
    case 'Conv1DTranspose': // not in TF.js layers: the graph compiler lowers it
      return ['kernel', ...bias(c)];
    case 'DepthwiseConv2D':
      return ['depthwise_kernel', ...bias(c)];
    case 'SeparableConv1D':
    case 'SeparableConv2D':
      return ['depthwise_kernel', 'pointwise_kernel', ...bias(c)];
    case 'BatchNormalization':
      return [...(c.scale === false ? [] : ['gamma']), ...(c.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'];
    case 'LayerNormalization':
      return [...(c.scale === false ? [] : ['gamma']), ...(c.center === false ? [] : ['beta'])];
    case 'Embedding':
      return ['embeddings'];
    case 'PReLU':
      return ['alpha'];
    case 'MultiHeadAttention': // not in TF.js layers: the graph compiler lowers it
      return ['query', 'key', 'value', 'attention_output'].flatMap((part) => [`${part}/kernel`, ...bias(c).map((b) => `${part}/${b}`)]);
    case 'SimpleRNN':
    case 'LSTM':
    case 'GRU':
      return ['kernel', 'recurrent_kernel', ...bias(c)];
    default:
      return WEIGHTLESS.has(layer.class_name) ? [] : undefined;
  }
}

export const isModel = (className: string): boolean => MODELS.has(className);
export const isWrapper = (className: string): boolean => className === 'Bidirectional' || className === 'TimeDistributed';

/** Whether edgeflow knows how to convert this class (wrappers and models are checked through their content). */
export function isKnownClass(className: string): boolean {
  return isModel(className) || isWrapper(className) || simpleWeights({ class_name: className, config: {} }) !== undefined;
}

export function innerLayer(layer: KerasLayer): KerasLayer {
  const inner = layer.config.layer as KerasLayer | undefined;
  if (!inner || typeof inner !== 'object') throw new Error(`${layer.class_name} ${String(layer.config.name)} has no inner layer`);
  return inner;
}

/**
 * TF.js weight names of one non-model layer, relative to nothing (full names), in TF.js order.
 * Bidirectional: forward then backward, under `<name>/forward_<inner>/` and `<name>/backward_<inner>/`.
 * TimeDistributed: the inner layer's weights under the wrapper's name.
 */
export function tfjsWeightNames(layer: KerasLayer): string[] {
  const name = String(layer.config.name);
  if (layer.class_name === 'Bidirectional') {
    const inner = innerLayer(layer);
    const own = simpleWeights(inner) ?? [];
    const innerName = String(inner.config.name);
    return [...own.map((w) => `${name}/forward_${innerName}/${w}`), ...own.map((w) => `${name}/backward_${innerName}/${w}`)];
  }
  if (layer.class_name === 'TimeDistributed') return (simpleWeights(innerLayer(layer)) ?? []).map((w) => `${name}/${w}`);
  return (simpleWeights(layer) ?? []).map((w) => `${name}/${w}`);
}
