// Keras 1 model configs (Keras 1.x `model.save`) rewritten as the Keras 2 configs they are: class
// renames (Convolution2D → Conv2D, Merge → Add / Concatenate / ...) and argument renames (nb_filter →
// filters, nb_row/nb_col → kernel_size, subsample → strides, border_mode → padding, output_dim → units,
// p → rate, dim_ordering → data_format, bias → use_bias; init / regularizers / constraints dropped, as
// they never change a prediction). The weights keep their Keras 2 order for every class rewritten.
// Refused by name: channels-first ('th') layers, recurrent layers (per-gate weights), merges of models
// and merge modes Keras 2 has no layer for.
import { isObject, type JsonObject } from './config-types.ts';

export interface Keras1Result {
  config: unknown;
  problems: string[];
}

/** Keras 1 class → Keras 2 class (classes not listed keep their name). */
const CLASSES: Record<string, string> = {
  Convolution1D: 'Conv1D',
  Convolution2D: 'Conv2D',
  Convolution3D: 'Conv3D',
  AtrousConvolution1D: 'Conv1D',
  AtrousConvolution2D: 'Conv2D',
  SeparableConvolution2D: 'SeparableConv2D',
  Model: 'Functional',
};

/** Keras 1 argument → Keras 2 argument, for every class. */
const RENAMES: Record<string, string> = {
  nb_filter: 'filters',
  output_dim: 'units',
  subsample: 'strides',
  subsample_length: 'strides',
  border_mode: 'padding',
  atrous_rate: 'dilation_rate',
  bias: 'use_bias',
  input_dtype: 'dtype',
  p: 'rate',
  pool_length: 'pool_size',
  stride: 'strides',
  filter_length: 'kernel_size',
};

/** Keras 1 arguments with no Keras 2 meaning at inference. */
const DROPPED =
  /^(init|inner_init|beta_init|gamma_init|W_regularizer|b_regularizer|U_regularizer|gamma_regularizer|beta_regularizer|activity_regularizer|W_constraint|b_constraint|U_constraint|weights|mode|dropout_W|dropout_U|dropout)$/;

const MERGES: Record<string, string> = { sum: 'Add', mul: 'Multiply', concat: 'Concatenate', ave: 'Average', max: 'Maximum' };
const RECURRENT = new Set(['LSTM', 'GRU', 'SimpleRNN']);
const CHANNEL_LAYERS = /Convolution|Conv|Pooling|ZeroPadding|Cropping|UpSampling|SpatialDropout/;

function layer(raw: JsonObject, problems: string[], theanoDefault: boolean): JsonObject {
  const className = String(raw.class_name);
  const source = isObject(raw.config) ? raw.config : {};
  const name = String(source.name ?? raw.name ?? className);
  const refuse = (why: string) => problems.push(`layer ${name} (${className}) ${why}`);
  if (['Sequential', 'Model', 'Functional'].includes(className)) {
    const layers = (Array.isArray(raw.config) ? raw.config : Array.isArray(source.layers) ? source.layers : []).map((l) => (isObject(l) ? layer(l, problems, theanoDefault) : l));
    return { ...raw, class_name: CLASSES[className] ?? className, config: Array.isArray(raw.config) ? layers : { ...source, layers } };
  }
  if (RECURRENT.has(className)) refuse('is a Keras 1 recurrent layer (its weights are stored per gate): load the file in Keras 2 and save it again');
  const config: JsonObject = {};
  for (const [key, value] of Object.entries(source)) {
    if (DROPPED.test(key)) continue;
    if (key === 'nb_row' || key === 'nb_col') continue;
    if (key === 'dim_ordering') {
      const th = value === 'th' || (value === 'default' && theanoDefault);
      if (th && CHANNEL_LAYERS.test(className)) refuse("uses dim_ordering='th' (channels first, Theano kernels): load the file in Keras 2 with the TensorFlow backend and save it again");
      config.data_format = th ? 'channels_first' : 'channels_last';
      continue;
    }
    config[RENAMES[key] ?? key] = value;
  }
  if (source.nb_row !== undefined) config.kernel_size = [source.nb_row, source.nb_col];
  // A Sequential layer (no inbound nodes) may carry its input size as input_dim / input_length.
  const first = !Array.isArray(raw.inbound_nodes) && config.batch_input_shape === undefined && typeof source.input_dim === 'number';
  if (first && className === 'Dense') config.batch_input_shape = [null, source.input_dim];
  if (first && className === 'Convolution1D') config.batch_input_shape = [null, source.input_length ?? null, source.input_dim];
  if (className === 'BatchNormalization' && (source.mode ?? 0) !== 0)
    refuse(`has mode=${JSON.stringify(source.mode)} (statistics of each batch, not the moving ones), which Keras 2 and TF.js do not have`);
  if (className !== 'Embedding') {
    delete config.input_dim;
    delete config.input_length;
  }
  if (className === 'Embedding') {
    // Keras 1 Embedding names its size output_dim as Keras 2 does.
    config.output_dim = source.output_dim;
    delete config.units;
  }
  let target = CLASSES[className] ?? className;
  if (className === 'Merge') {
    const mode = String(source.mode ?? 'sum');
    target = MERGES[mode] ?? className;
    if (!MERGES[mode]) refuse(`merges with mode=${JSON.stringify(source.mode)}, which Keras 2 has no layer for: rebuild it with a built-in merge layer`);
    if (Array.isArray(source.layers)) refuse('merges whole models (a Keras 1 branching Sequential): rebuild it as a functional model');
    for (const key of ['mode', 'concat_axis', 'dot_axes', 'mode_type', 'output_shape', 'output_shape_type', 'output_mask', 'output_mask_type', 'arguments']) delete config[key];
    if (target === 'Concatenate') config.axis = source.concat_axis ?? -1;
  }
  const out: JsonObject = { ...raw, class_name: target, config };
  if (Array.isArray(raw.inbound_nodes)) {
    // Keras 1 nodes are [layer, node, tensor]; Keras 2 adds the call's keyword arguments.
    out.inbound_nodes = raw.inbound_nodes.map((node) => (Array.isArray(node) ? node.map((entry) => (Array.isArray(entry) && entry.length === 3 ? [...entry, {}] : entry)) : node));
  }
  return out;
}

/**
 * The Keras 2 config of a Keras 1 model config (parsed JSON). `backend` is the file's backend
 * attribute: with Theano, dim_ordering 'default' meant channels first.
 */
export function keras1ToKeras2(raw: unknown, backend: string | undefined): Keras1Result {
  const problems: string[] = [];
  if (!isObject(raw)) return { config: raw, problems };
  return { config: layer(raw, problems, backend === 'theano'), problems };
}
