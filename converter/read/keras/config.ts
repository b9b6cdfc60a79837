// Translates a Keras model config (Keras 2, Keras 3 legacy HDF5, Keras 3 `.keras`) into the
// Keras 2 serialization that tfjs-layers 4.22 deserializes: unwraps module/registered_name,
// DTypePolicy objects and build_config, renames Keras 3 arguments, rewrites Keras 3 inbound
// nodes, and refuses what TF.js cannot run (custom classes, Lambda, layer options it lacks),
// listing every problem at once.
import { ConversionError } from '../../../shared/errors.ts';
import { isObject, type JsonObject, type KerasLayer } from './config-types.ts';
import { isKnownClass, isModel, isWrapper } from './layers.ts';
import { canLower, lowerRefusal } from '../../../shared/graph/can-lower.ts';

export interface TranslateOptions {
  /** Major version of the Keras that wrote the file (2 or 3); some defaults changed in 3. */
  kerasMajor: number;
  /** Used in error messages. */
  source: string;
}

interface Context extends TranslateOptions {
  unknownClasses: Set<string>;
  lambdas: string[];
  problems: string[];
}

/** Activations by Keras name → the tfjs-layers name of the same function. */
const ACTIVATIONS: Record<string, string> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  selu: 'selu',
  sigmoid: 'sigmoid',
  tanh: 'tanh',
  softmax: 'softmax',
  softplus: 'softplus',
  softsign: 'softsign',
  swish: 'swish',
  silu: 'swish',
  mish: 'mish',
  gelu: 'gelu',
  hard_sigmoid: 'hard_sigmoid',
};

const INITIALIZERS = new Set([
  'Zeros',
  'Ones',
  'Constant',
  'RandomUniform',
  'RandomNormal',
  'TruncatedNormal',
  'VarianceScaling',
  'GlorotUniform',
  'GlorotNormal',
  'HeUniform',
  'HeNormal',
  'LecunUniform',
  'LecunNormal',
  'Orthogonal',
  'Identity',
]);
const INITIALIZER_ALIASES: Record<string, string> = { OrthogonalInitializer: 'Orthogonal', IdentityInitializer: 'Identity', Zeros: 'Zeros', zeros: 'Zeros' };

/** Keras 3 / TF arguments that tfjs-layers has no use for; dropping them changes no prediction. */
const DROPPED_KEYS = new Set([
  'quantization_config',
  'lora_rank',
  'lora_alpha',
  'synchronized',
  'optional',
  'ragged',
  'use_cudnn',
  'autocast',
  'virtual_batch_size',
  'adjustment',
  'fused',
  'renorm_clipping',
  'renorm_momentum',
]);

const BUILTIN_MODULE = /^(keras|tf_keras|tensorflow)(\.|$)/;

const pascal = (snake: string): string =>
  snake
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

function dtypeName(value: unknown): unknown {
  const name = isObject(value) ? (isObject(value.config) ? value.config.name : value.name) : value;
  if (typeof name !== 'string') return value;
  // Mixed and half-precision policies keep float32 variables (or are read back as float32 here).
  if (/^mixed_|^(b?float16)$/.test(name)) return 'float32';
  return name;
}

function translateInitializer(value: unknown): unknown {
  if (value === null || value === undefined) return value;
  let className: string;
  let config: JsonObject = {};
  if (typeof value === 'string') className = pascal(value);
  else if (isObject(value) && typeof value.class_name === 'string') {
    className = value.class_name;
    config = isObject(value.config) ? { ...value.config } : {};
  } else return { class_name: 'Zeros', config: {} };
  className = INITIALIZER_ALIASES[className] ?? className;
  // Initializers never touch a loaded model's values (tfjs skips them when weights are given),
  // so one TF.js lacks is replaced rather than refused.
  if (!INITIALIZERS.has(className)) return { class_name: 'Zeros', config: {} };
  if (className === 'VarianceScaling' && config.distribution === 'untruncated_normal') config.distribution = 'normal';
  return { class_name: className, config };
}

function translateActivation(value: unknown, layerName: string, ctx: Context): unknown {
  let name = value;
  if (isObject(value)) name = typeof value.config === 'string' ? value.config : isObject(value.config) ? value.config.name : value.class_name;
  if (name === null || name === undefined) return 'linear';
  if (typeof name !== 'string' || !(name in ACTIVATIONS)) {
    ctx.problems.push(`layer ${layerName} uses activation ${JSON.stringify(name)}, which TF.js does not have`);
    return 'linear';
  }
  if (name === 'hard_sigmoid' && ctx.kerasMajor >= 3) {
    ctx.problems.push(`layer ${layerName} uses Keras 3 hard_sigmoid (relu6(x + 3) / 6), which differs from TF.js hard_sigmoid (0.2x + 0.5)`);
  }
  return ACTIVATIONS[name];
}

/** Generic per-argument translation shared by every layer class. */
function translateArguments(config: JsonObject, layerName: string, ctx: Context): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(config)) {
    if (DROPPED_KEYS.has(key)) continue;
    if (key === 'dtype') out[key] = dtypeName(value);
    else if (key.endsWith('_initializer')) out[key] = translateInitializer(value);
    else if (key.endsWith('_regularizer') || key.endsWith('_constraint'))
      out[key] = null; // training-only
    else if (key === 'activation' || key === 'recurrent_activation') out[key] = translateActivation(value, layerName, ctx);
    else out[key] = value;
  }
  return out;
}

/** What a user can do when a class only the graph compiler could convert uses an option it does not lower. */
const COMPILER_ADVICE: Record<string, string> = {
  Conv1DTranspose: 'use padding "valid" or "same" without output_padding or dilation, or an UpSampling1D + Conv1D',
  MultiHeadAttention: 'call it without masks or returned scores, over axis 1, and save the model again',
  TFOpLambda: 'replace that tf call with a built-in Keras layer (Reshape, Permute, Add, Multiply, Concatenate, ...) and save the model again',
  SlicingOpLambda: 'replace the slice with a built-in Keras layer (Cropping1D/2D, Reshape, ...) and save the model again',
};

const nonzero = (value: unknown): boolean => value !== undefined && value !== null && value !== 0;

/** Class-specific renames and refusals (Keras 3 arguments tfjs-layers 4.22 names differently or lacks). */
function translateClassArguments(className: string, c: JsonObject, layerName: string, ctx: Context): void {
  const refuse = (why: string) => ctx.problems.push(`layer ${layerName} (${className}) ${why}`);
  switch (className) {
    case 'InputLayer':
      if (c.batch_shape !== undefined) {
        c.batch_input_shape = c.batch_shape;
        delete c.batch_shape;
      }
      if (c.batch_input_shape === undefined && Array.isArray(c.shape)) c.batch_input_shape = [null, ...c.shape];
      delete c.shape;
      if (c.sparse === true) refuse('takes sparse input, which TF.js does not support');
      delete c.sparse;
      delete c.input_tensor;
      break;
    case 'ReLU':
      if (nonzero(c.negative_slope)) refuse(`has negative_slope=${String(c.negative_slope)}; TF.js ReLU supports only max_value`);
      if (nonzero(c.threshold)) refuse(`has threshold=${String(c.threshold)}; TF.js ReLU supports only max_value`);
      delete c.negative_slope;
      delete c.threshold;
      break;
    case 'LeakyReLU':
      if (c.negative_slope !== undefined) {
        c.alpha = c.negative_slope;
        delete c.negative_slope;
      }
      break;
    case 'Conv1DTranspose':
    case 'MultiHeadAttention':
    case 'TFOpLambda':
    case 'SlicingOpLambda': {
      // TF.js layers lacks these classes; the graph compiler lowers them (the pipeline compiles the model).
      const why = lowerRefusal(className, c);
      if (why) refuse(`has ${why}, which the graph compiler does not lower (TF.js layers has no ${className}): ${COMPILER_ADVICE[className]}`);
      if (className === 'Conv1DTranspose') delete c.groups;
      break;
    }
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
    case 'Conv2DTranspose':
    case 'Conv3DTranspose':
    case 'DepthwiseConv2D':
    case 'SeparableConv1D':
    case 'SeparableConv2D':
      if (typeof c.groups === 'number' && c.groups > 1) refuse(`is a grouped convolution (groups=${c.groups}), which TF.js does not support`);
      delete c.groups;
      break;
    case 'GlobalAveragePooling1D':
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling1D':
    case 'GlobalMaxPooling2D':
      if (c.keepdims === true) refuse('has keepdims=True, which TF.js global pooling does not support');
      delete c.keepdims;
      break;
    case 'BatchNormalization':
      if (c.renorm === true) refuse('uses batch renormalization, which TF.js does not support');
      delete c.renorm;
      if (Array.isArray(c.axis) && c.axis.length === 1) c.axis = c.axis[0];
      break;
    case 'LayerNormalization':
      if (c.rms_scaling === true) refuse('uses rms_scaling, which TF.js does not support');
      delete c.rms_scaling;
      break;
    case 'GRU':
      // The graph compiler lowers reset_after=True (the pipeline compiles the model); refused only when it cannot.
      if (c.reset_after === true && !canLower(className, c)) {
        refuse(
          'has reset_after=True (the Keras default since 2.3, bias shape [2, 3*units]); TF.js 4.22 GRU implements only reset_after=False and the two are not equivalent: retrain with GRU(..., reset_after=False)',
        );
      }
      break;
    case 'Bidirectional':
      delete c.backward_layer; // tfjs builds the backward copy from the forward layer's config
      break;
    default:
      break;
  }
}

/**
 * tfjs-layers (like Keras 2) gives a nested model node 0 for its own inner graph, so its first call
 * in the outer graph is node 1; Keras 3 numbers that call 0. References to nested models shift by one.
 */
const nodeIndexFor = (layer: unknown, index: unknown, nestedModels: Set<string>): unknown => (typeof layer === 'string' && nestedModels.has(layer) && typeof index === 'number' ? index + 1 : index);

function keras3NodeToKeras2(node: JsonObject, layerName: string, className: string, ctx: Context, nestedModels: Set<string>): unknown[] {
  const history: unknown[][] = [];
  const collect = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(collect);
    else if (isObject(value)) {
      if (value.class_name === '__keras_tensor__' && isObject(value.config) && Array.isArray(value.config.keras_history)) {
        history.push(value.config.keras_history as unknown[]);
      } else Object.values(value).forEach(collect);
    }
  };
  collect(node.args);
  const keywords: JsonObject = {};
  const entries = history.map(([layer, nodeIndex, tensorIndex], i) => [layer, nodeIndexFor(layer, nodeIndex, nestedModels), tensorIndex, i === 0 ? keywords : {}]);
  // MultiHeadAttention's value / key passed by keyword go where Keras 2 records them (the graph compiler reads them there).
  const kwargs: JsonObject = isObject(node.kwargs) ? { ...node.kwargs } : {};
  if (className === 'MultiHeadAttention' && entries[0]) {
    for (const key of ['value', 'key']) {
      const before = history.length;
      collect(kwargs[key]);
      const found = history.splice(before);
      if (found.length !== 1) continue;
      const [layer, nodeIndex, tensorIndex] = found[0]!;
      keywords[key] = [layer, nodeIndexFor(layer, nodeIndex, nestedModels), tensorIndex];
      delete kwargs[key];
    }
  }
  const before = history.length;
  collect(kwargs);
  if (history.length > before) ctx.problems.push(`layer ${layerName} is called with tensors as keyword arguments (mask or initial_state), which edgeflow does not convert`);
  return entries;
}

function translateInboundNodes(nodes: unknown, layerName: string, className: string, ctx: Context, nestedModels: Set<string>): unknown[] {
  if (!Array.isArray(nodes)) return [];
  return nodes.map((node) => (isObject(node) ? keras3NodeToKeras2(node, layerName, className, ctx, nestedModels) : node));
}

/** [['a', 0, 0]] stays; Keras 3's flat ['a', 0, 0] for a single tensor becomes [['a', 0, 0]]. */
function tensorList(value: unknown, nestedModels: Set<string>): unknown {
  const list = Array.isArray(value) && typeof value[0] === 'string' ? [value] : value;
  if (!Array.isArray(list) || nestedModels.size === 0) return list;
  return list.map((entry) => (Array.isArray(entry) ? [entry[0], nodeIndexFor(entry[0], entry[1], nestedModels), ...entry.slice(2)] : entry));
}

function buildInputShape(raw: JsonObject): unknown {
  if (isObject(raw.build_config) && Array.isArray(raw.build_config.input_shape)) return raw.build_config.input_shape;
  return undefined;
}

/** An unbuilt Sequential that starts with an Embedding takes integer sequences: [batch, input_length or any]. */
function embeddingInputShape(first: KerasLayer): unknown[] | undefined {
  if (first.class_name !== 'Embedding') return undefined;
  const length = first.config.input_length;
  return [null, typeof length === 'number' ? length : null];
}

function translateSequential(config: JsonObject, raw: JsonObject, ctx: Context, nested: boolean): JsonObject {
  const rawLayers = Array.isArray(config.layers) ? config.layers : [];
  const out = translateArguments({ ...config, layers: undefined }, String(config.name), ctx);
  delete out.build_input_shape;
  const layers = rawLayers.map((layer) => translateLayer(layer, ctx, false));
  // tfjs-layers cannot call a nested Sequential that starts with an InputLayer ("Graph
  // disconnected"): give its shape to the next layer instead, as Keras 2.0 wrote it.
  if (nested && layers.length > 1 && layers[0]!.class_name === 'InputLayer' && layers[1]!.config.batch_input_shape === undefined) {
    layers[1]!.config.batch_input_shape = layers[0]!.config.batch_input_shape;
    layers.shift();
  }
  // Keras reads only the first layer's input shape; one written on a later layer (often a wrong
  // one, such as a batch size folded into input_shape) is ignored there, but TF.js would check it.
  for (const layer of layers.slice(1)) {
    delete layer.config.batch_input_shape;
    delete layer.config.input_shape;
  }
  const first = layers[0];
  const firstRaw = rawLayers[0];
  if (first && first.class_name !== 'InputLayer' && first.config.batch_input_shape === undefined && first.config.input_shape === undefined) {
    const shape = config.build_input_shape ?? buildInputShape(raw) ?? (isObject(firstRaw) ? buildInputShape(firstRaw) : undefined) ?? embeddingInputShape(first);
    if (Array.isArray(shape)) first.config.batch_input_shape = shape;
    else ctx.problems.push(`Sequential model ${String(config.name)} has no input shape (it was saved before it was built): call model.build(input_shape) or add an Input before saving`);
  }
  out.layers = dropIdentityResizing(layers, ctx);
  return out;
}

const SHAPE_KEEPING = new Set(['Rescaling', 'Dropout', 'Activation', 'GaussianNoise']);

/**
 * TF.js 4.22's Resizing reports a wrong output shape ([height, width, input dim 2], no batch), so
 * the next layer's rank check fails. A Resizing to the size its input already has (a common
 * preprocessing stub) changes nothing and is dropped; any other is refused by name.
 */
function dropIdentityResizing(layers: KerasLayer[], ctx: Context): KerasLayer[] {
  const shape = layers[0]?.config.batch_input_shape;
  let keeps = true;
  return layers.filter((layer) => {
    if (layer.class_name !== 'Resizing') {
      keeps &&= layer === layers[0] || SHAPE_KEEPING.has(layer.class_name);
      return true;
    }
    const c = layer.config;
    if (keeps && Array.isArray(shape) && shape.length === 4 && shape[1] === c.height && shape[2] === c.width && c.crop_to_aspect_ratio !== true) return false;
    ctx.problems.push(
      `layer ${String(c.name)} (Resizing) resizes to ${String(c.height)}x${String(c.width)}, which TF.js 4.22 Resizing cannot chain (it drops the batch dimension): resize images before predicting and save the model without this layer`,
    );
    return true;
  });
}

function translateFunctional(config: JsonObject, ctx: Context): JsonObject {
  const rawLayers = Array.isArray(config.layers) ? config.layers : [];
  const out = translateArguments({ ...config, layers: undefined }, String(config.name), ctx);
  // Keras 3 writes inbound nodes as {args, kwargs}; only then do nested-model node indices shift.
  const keras3 = rawLayers.some((layer) => isObject(layer) && Array.isArray(layer.inbound_nodes) && layer.inbound_nodes.some(isObject));
  const nestedModels = new Set<string>(
    keras3
      ? rawLayers.filter((l): l is JsonObject => isObject(l) && typeof l.class_name === 'string' && isModel(l.class_name)).map((l) => String(l.name ?? (isObject(l.config) ? l.config.name : '')))
      : [],
  );
  out.layers = rawLayers.map((layer) => translateLayer(layer, ctx, true, false, nestedModels));
  out.input_layers = tensorList(config.input_layers, new Set());
  out.output_layers = tensorList(config.output_layers, nestedModels);
  return out;
}

function translateLayer(raw: unknown, ctx: Context, inFunctional: boolean, topLevel = false, nestedModels = new Set<string>()): KerasLayer {
  if (!isObject(raw) || typeof raw.class_name !== 'string') {
    ctx.problems.push(`a layer entry is not a {class_name, config} object: ${JSON.stringify(raw).slice(0, 80)}`);
    return { class_name: 'InputLayer', config: {} };
  }
  const className = raw.class_name;
  // Keras ≤ 2.1 wrote a Sequential's config as the bare list of its layers.
  const rawConfig: JsonObject = Array.isArray(raw.config) ? { name: raw.name ?? 'sequential', layers: raw.config } : isObject(raw.config) ? raw.config : {};
  const layerName = String(rawConfig.name ?? raw.name ?? className);
  const custom = typeof raw.module === 'string' && !BUILTIN_MODULE.test(raw.module);
  let config: JsonObject;
  if (className === 'Lambda') {
    ctx.lambdas.push(layerName);
    config = { name: layerName };
  } else if (custom || !isKnownClass(className)) {
    ctx.unknownClasses.add(className);
    config = { name: layerName };
  } else if (className === 'Sequential') {
    config = translateSequential(rawConfig, raw, ctx, !topLevel);
  } else if (isModel(className)) {
    config = translateFunctional(rawConfig, ctx);
  } else {
    config = translateArguments(rawConfig, layerName, ctx);
    translateClassArguments(className, config, layerName, ctx);
    if (isWrapper(className)) config.layer = translateLayer(rawConfig.layer, ctx, false);
  }
  const layer: KerasLayer = { class_name: className, config };
  if (inFunctional) {
    layer.name = typeof raw.name === 'string' ? raw.name : layerName;
    layer.inbound_nodes = translateInboundNodes(raw.inbound_nodes, layerName, className, ctx, nestedModels);
  }
  return layer;
}

/**
 * The model config tfjs-layers accepts, from a Keras model config (parsed JSON).
 * Throws ConversionError listing every unknown class, Lambda layer and unsupported option.
 */
export function translateModelConfig(raw: unknown, options: TranslateOptions): KerasLayer {
  const ctx: Context = { ...options, unknownClasses: new Set(), lambdas: [], problems: [] };
  if (!isObject(raw) || typeof raw.class_name !== 'string') {
    throw new ConversionError(`${options.source}: the model config is not a Keras {class_name, config} object`);
  }
  if (!isModel(raw.class_name)) {
    const known = isKnownClass(raw.class_name) && !(typeof raw.module === 'string' && !BUILTIN_MODULE.test(raw.module));
    throw new ConversionError(
      known
        ? `${options.source}: the file holds a single ${raw.class_name} layer, not a Sequential or Functional model`
        : `${options.source}: the model is a custom Keras class ${raw.class_name} (subclassed model), which only its Python code can rebuild; save a Sequential or Functional model instead`,
    );
  }
  const model = translateLayer(raw, ctx, false, true);
  const messages: string[] = [];
  if (ctx.unknownClasses.size > 0) {
    messages.push(`custom or unknown Keras layer classes ${[...ctx.unknownClasses].sort().join(', ')}: TF.js cannot rebuild them without their Python code`);
  }
  if (ctx.lambdas.length > 0) messages.push(`Lambda layers ${ctx.lambdas.join(', ')} hold Python code that TF.js cannot run; replace them with built-in layers`);
  messages.push(...ctx.problems);
  if (messages.length > 0) throw new ConversionError(`${options.source}: cannot convert this Keras model: ${messages.join('; ')}`);
  return model;
}
