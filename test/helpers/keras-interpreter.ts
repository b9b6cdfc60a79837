// A plain float64 JS interpreter of Keras 2 model configs (Sequential and Functional, nested) for
// one image, with weights looked up by Keras weight name (`Conv1/kernel`): the independent
// reference for convolutional fixtures (Teachable Machine's MobileNetV2). Knows Conv2D,
// DepthwiseConv2D, BatchNormalization, ReLU, ZeroPadding2D, Add, GlobalAveragePooling2D, Dense,
// Dropout, Activation; throws on anything else.

/** One image, HWC, row-major (a vector is 1×1×n). */
export interface Image {
  h: number;
  w: number;
  c: number;
  data: Float64Array;
}

type Config = Record<string, unknown>;
interface Layer {
  class_name: string;
  config: Config;
  inbound_nodes?: unknown[];
}
export type WeightOf = (name: string) => ArrayLike<number> | undefined;

const image = (h: number, w: number, c: number): Image => ({ h, w, c, data: new Float64Array(h * w * c) });
const pairOf = (v: unknown, fallback: number): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : v === undefined || v === null ? [fallback, fallback] : [Number(v), Number(v)];

function activate(x: Image, activation: unknown): Image {
  const a = String(activation ?? 'linear');
  if (a === 'linear') return x;
  if (a === 'relu') return { ...x, data: x.data.map((v) => Math.max(0, v)) };
  if (a === 'relu6') return { ...x, data: x.data.map((v) => Math.min(6, Math.max(0, v))) };
  if (a === 'sigmoid') return { ...x, data: x.data.map((v) => 1 / (1 + Math.exp(-v))) };
  if (a === 'softmax') {
    const peak = Math.max(...x.data);
    const e = x.data.map((v) => Math.exp(v - peak));
    const total = e.reduce((s, v) => s + v, 0);
    return { ...x, data: e.map((v) => v / total) };
  }
  throw new Error(`interpreter: activation ${a}`);
}

/** Keras 'same' / 'valid' geometry: output size and the padding before. */
function geometry(size: number, k: number, stride: number, padding: string): { out: number; before: number } {
  if (padding === 'valid') return { out: Math.floor((size - k) / stride) + 1, before: 0 };
  const out = Math.ceil(size / stride);
  return { out, before: Math.floor(Math.max((out - 1) * stride + k - size, 0) / 2) };
}

/** Conv2D (depthwise=false: kernel [kh, kw, in, out]) or DepthwiseConv2D (kernel [kh, kw, in, 1]). */
function conv(x: Image, kernel: ArrayLike<number>, kh: number, kw: number, out: number, bias: ArrayLike<number> | undefined, c: Config, depthwise: boolean): Image {
  const [sh, sw] = pairOf(c.strides, 1);
  const padding = String(c.padding ?? 'valid');
  const gh = geometry(x.h, kh, sh, padding);
  const gw = geometry(x.w, kw, sw, padding);
  const y = image(gh.out, gw.out, out);
  for (let oy = 0; oy < gh.out; oy++)
    for (let ox = 0; ox < gw.out; ox++) {
      const at = (oy * gw.out + ox) * out;
      for (let o = 0; o < out; o++) y.data[at + o] = bias ? bias[o]! : 0;
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh + ky - gh.before;
        if (iy < 0 || iy >= x.h) continue;
        for (let kx = 0; kx < kw; kx++) {
          const ix = ox * sw + kx - gw.before;
          if (ix < 0 || ix >= x.w) continue;
          const xi = (iy * x.w + ix) * x.c;
          const ki = (ky * kw + kx) * x.c;
          if (depthwise) for (let ci = 0; ci < x.c; ci++) y.data[at + ci]! += x.data[xi + ci]! * kernel[ki + ci]!;
          else
            for (let ci = 0; ci < x.c; ci++) {
              const v = x.data[xi + ci]!;
              const row = (ki + ci) * out;
              for (let o = 0; o < out; o++) y.data[at + o]! += v * kernel[row + o]!;
            }
        }
      }
    }
  return activate(y, c.activation);
}

function layerCall(layer: Layer, inputs: Image[], weight: WeightOf): Image {
  const c = layer.config;
  const name = String(c.name);
  const w = (key: string) => {
    const found = weight(`${name}/${key}`);
    if (!found) throw new Error(`interpreter: no weight ${name}/${key}`);
    return found;
  };
  const x = inputs[0]!;
  switch (layer.class_name) {
    case 'Sequential':
    case 'Functional':
    case 'Model':
      return runModel(layer, x, weight);
    case 'InputLayer':
    case 'Dropout':
      return x;
    case 'Conv2D': {
      const [kh, kw] = pairOf(c.kernel_size, 1);
      return conv(x, w('kernel'), kh, kw, Number(c.filters), c.use_bias === false ? undefined : w('bias'), c, false);
    }
    case 'DepthwiseConv2D': {
      const [kh, kw] = pairOf(c.kernel_size, 1);
      if (Number(c.depth_multiplier ?? 1) !== 1) throw new Error('interpreter: depth_multiplier');
      return conv(x, w('depthwise_kernel'), kh, kw, x.c, c.use_bias === false ? undefined : w('bias'), c, true);
    }
    case 'BatchNormalization': {
      const [gamma, beta, mean, variance] = [c.scale === false ? undefined : w('gamma'), c.center === false ? undefined : w('beta'), w('moving_mean'), w('moving_variance')];
      const eps = Number(c.epsilon ?? 1e-3);
      return { ...x, data: x.data.map((v, i) => ((v - mean[i % x.c]!) / Math.sqrt(variance[i % x.c]! + eps)) * (gamma ? gamma[i % x.c]! : 1) + (beta ? beta[i % x.c]! : 0)) };
    }
    case 'ReLU': {
      const max = c.max_value === null || c.max_value === undefined ? Infinity : Number(c.max_value);
      return { ...x, data: x.data.map((v) => Math.min(max, Math.max(0, v))) };
    }
    case 'Activation':
      return activate(x, c.activation);
    case 'ZeroPadding2D': {
      const raw = c.padding as unknown;
      const [ph, pw] = pairOf(raw, 1);
      const [[t, b], [l, r]] =
        Array.isArray(raw) && Array.isArray(raw[0])
          ? (raw as [number[], number[]])
          : [
              [ph, ph],
              [pw, pw],
            ];
      const y = image(x.h + t! + b!, x.w + l! + r!, x.c);
      for (let iy = 0; iy < x.h; iy++) y.data.set(x.data.subarray(iy * x.w * x.c, (iy + 1) * x.w * x.c), ((iy + t!) * y.w + l!) * x.c);
      return y;
    }
    case 'Add':
      return { ...x, data: x.data.map((_, i) => inputs.reduce((sum, t) => sum + t.data[i]!, 0)) };
    case 'GlobalAveragePooling2D': {
      const y = image(1, 1, x.c);
      for (let i = 0; i < x.data.length; i++) y.data[i % x.c]! += x.data[i]! / (x.h * x.w);
      return y;
    }
    case 'Dense': {
      const units = Number(c.units);
      const [kernel, bias] = [w('kernel'), c.use_bias === false ? undefined : w('bias')];
      const y = image(1, 1, units);
      for (let o = 0; o < units; o++) {
        let sum = bias ? bias[o]! : 0;
        for (let i = 0; i < x.c; i++) sum += x.data[i]! * kernel[i * units + o]!;
        y.data[o] = sum;
      }
      return activate(y, c.activation);
    }
    default:
      throw new Error(`interpreter: class ${layer.class_name}`);
  }
}

/** Runs a Sequential or Functional model config (single input, single output) on one image. */
export function runModel(model: Layer, x: Image, weight: WeightOf): Image {
  const layers = (model.config.layers ?? []) as Layer[];
  if (model.class_name === 'Sequential') return layers.reduce((t, layer) => layerCall(layer, [t], weight), x);
  const values = new Map<string, Image>();
  const [input] = model.config.input_layers as [string, number, number][];
  values.set(input![0], x);
  const pending = layers.filter((l) => l.class_name !== 'InputLayer');
  while (pending.length > 0) {
    const ready = pending.findIndex((l) => ((l.inbound_nodes?.[0] ?? []) as unknown[][]).every((e) => values.has(String(e[0]))));
    if (ready < 0) throw new Error('interpreter: a layer reads nothing computed');
    const [layer] = pending.splice(ready, 1);
    const inputs = ((layer!.inbound_nodes![0] ?? []) as unknown[][]).map((e) => values.get(String(e[0]))!);
    values.set(String(layer!.config.name), layerCall(layer!, inputs, weight));
  }
  const [output] = model.config.output_layers as [string, number, number][];
  return values.get(output![0])!;
}
