// A graph model of a convolutional net run as a straight list of TF.js kernels, worked out once at
// load: the fused convolutions go to their kernels directly (tf.engine().runKernel, as the stock ops
// call them, without the ops' argument checks and gradient wrappers), the few other ops through the
// same tf functions the stock graph executor calls, and each intermediate is disposed after its last
// reader. The stock executor's work per node (a tensor map, attribute decoding, disposal tracking)
// cost MobileNetV2 about a tenth of its prediction time. A graph with any other op, a multi-output
// op or a control input gets no plan (null): the caller runs it with GraphModel.execute.
import * as tf from '@tensorflow/tfjs-core';
import { readAttr, type GraphNode } from './graphdef.ts';

export interface KernelPlan {
  /** Inputs in `inputNames` order; outputs in `outputNames` order, which the caller disposes. */
  run(inputs: tf.Tensor[]): tf.Tensor[];
}

interface Step {
  name: string;
  inputs: string[];
  run(args: tf.Tensor[]): tf.Tensor;
}

const { ints, string: text, strings: texts, bool: flag } = readAttr;

/** Activations the wasm backend's fused kernels apply (FusableActivation), by TF's name in fused_ops. */
const FUSED_ACTIVATIONS: Record<string, tf.fused.Activation> = { relu: 'relu', relu6: 'relu6', sigmoid: 'sigmoid', elu: 'elu' };

const UNARY: Record<string, (x: tf.Tensor) => tf.Tensor> = { Relu: tf.relu, Relu6: tf.relu6, Sigmoid: tf.sigmoid, Tanh: tf.tanh, Softmax: (x) => tf.softmax(x) };
const BINARY: Record<string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor> = { Add: tf.add, AddV2: tf.add, Sub: tf.sub, Mul: tf.mul, RealDiv: tf.div, Maximum: tf.maximum, Minimum: tf.minimum };

/** 'same' / 'valid', or TF's explicit_paddings as [[0, 0], [top, bottom], [left, right], [0, 0]]. */
function padding(node: GraphNode): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] | null {
  const pad = text(node.attr?.padding, 'VALID').toLowerCase();
  if (pad === 'same' || pad === 'valid') return pad;
  const p = ints(node.attr?.explicit_paddings, []);
  if (pad !== 'explicit' || p.length !== 8) return null;
  return [
    [p[0]!, p[1]!],
    [p[2]!, p[3]!],
    [p[4]!, p[5]!],
    [p[6]!, p[7]!],
  ];
}

/** TF's fused_ops [BiasAdd, activation?] as the fused kernels' activation; null for any other list. */
function fusedActivation(node: GraphNode): tf.fused.Activation | null {
  const [extra, activation = 'linear'] = texts(node.attr?.fused_ops).map((s) => s.toLowerCase());
  if (extra !== 'biasadd') return null;
  return activation === 'linear' ? 'linear' : (FUSED_ACTIVATIONS[activation] ?? null);
}

/** Strides, dilations and padding of an NHWC convolution (or pooling); null when it has others. */
function convGeometry(node: GraphNode): { strides: [number, number]; dilations: [number, number]; pad: NonNullable<ReturnType<typeof padding>> } | null {
  const [, sh, sw] = ints(node.attr?.strides, []);
  const [, dh, dw] = ints(node.attr?.dilations, [1, 1, 1, 1]);
  const pad = padding(node);
  if (sh === undefined || sw === undefined || dh === undefined || dw === undefined || pad === null || text(node.attr?.data_format, 'NHWC') !== 'NHWC') return null;
  return { strides: [sh, sw], dilations: [dh, dw], pad };
}

/** One node as a step, or null when this plan does not run its op as the stock executor would. */
function stepOf(node: GraphNode, constant: (name: string) => number[] | null): Step | null {
  const inputs = node.input ?? [];
  const attr = node.attr ?? {};
  const step = (take: number, run: Step['run']): Step | null => (inputs.length < take ? null : { name: node.name, inputs: inputs.slice(0, take), run });
  const pool = (kind: 'MaxPool' | 'AvgPool'): Step | null => {
    const [, kh, kw] = ints(attr.ksize, []);
    const geometry = convGeometry(node);
    const pad = geometry?.pad;
    if (kh === undefined || kw === undefined || !geometry || (pad !== 'same' && pad !== 'valid')) return null;
    const f = kind === 'MaxPool' ? tf.maxPool : tf.avgPool;
    return step(1, ([x]) => f(x as tf.Tensor4D, [kh, kw], geometry.strides, pad));
  };
  switch (node.op) {
    case '_FusedConv2D':
    case 'FusedDepthwiseConv2dNative': {
      const activation = fusedActivation(node);
      const geometry = convGeometry(node);
      if (!activation || !geometry || inputs.length !== 3 || Number((attr.num_args as { i?: string })?.i ?? 1) !== 1) return null;
      const kernel = node.op === '_FusedConv2D' ? 'FusedConv2D' : 'FusedDepthwiseConv2D';
      const attrs = { ...geometry, dataFormat: 'NHWC', dimRoundingMode: undefined, activation, leakyreluAlpha: 0.2 };
      return step(3, ([x, filter, bias]) => tf.engine().runKernel(kernel, { x: x!, filter: filter!, bias: bias! }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
    }
    case '_FusedMatMul': {
      const activation = fusedActivation(node);
      if (!activation || inputs.length !== 3) return null;
      const [transposeA, transposeB] = [flag(attr.transpose_a), flag(attr.transpose_b)];
      return step(3, ([a, b, bias]) => tf.fused.matMul({ a: a!, b: b!, transposeA, transposeB, bias, activation }));
    }
    case 'Conv2D':
    case 'DepthwiseConv2dNative': {
      const geometry = convGeometry(node);
      if (!geometry) return null;
      const { strides, pad, dilations } = geometry;
      const f = node.op === 'Conv2D' ? tf.conv2d : tf.depthwiseConv2d;
      return step(2, ([x, filter]) => f(x as tf.Tensor4D, filter as tf.Tensor4D, strides, pad, 'NHWC', dilations));
    }
    case 'Squeeze': {
      const axis = ints(attr.axis ?? attr.squeeze_dims, []);
      return step(1, ([x]) => tf.squeeze(x!, axis.length > 0 ? axis : undefined));
    }
    case 'Mean': {
      const axis = constant(inputs[1] ?? '');
      return axis ? step(1, ([x]) => tf.mean(x!, axis, flag(attr.keep_dims))) : null;
    }
    case 'Reshape': {
      const shape = constant(inputs[1] ?? '');
      return shape ? step(1, ([x]) => tf.reshape(x!, shape)) : null;
    }
    case 'MaxPool':
    case 'AvgPool':
      return pool(node.op);
    default: {
      const unary = UNARY[node.op];
      const binary = BINARY[node.op];
      if (unary) return step(1, ([x]) => unary(x!));
      return binary ? step(2, ([a, b]) => binary(a!, b!)) : null;
    }
  }
}

/**
 * The plan of a graph model's nodes, reading its weights (GraphModel.weights: Const name → tensor);
 * null when a node is outside what it runs. `inputNames` / `outputNames` are the graph's
 * Placeholder and output node names, in the caller's order.
 */
export function kernelPlan(nodes: readonly GraphNode[], weights: tf.NamedTensorMap | Record<string, tf.Tensor[]>, inputNames: string[], outputNames: string[]): KernelPlan | null {
  const weight = (name: string): tf.Tensor | undefined => {
    const found = (weights as Record<string, tf.Tensor | tf.Tensor[]>)[name];
    return Array.isArray(found) ? found[0] : found;
  };
  const constant = (name: string): number[] | null => {
    const t = weight(name);
    return t && t.dtype === 'int32' && t.rank <= 1 ? Array.from(t.dataSync()) : null;
  };
  const steps: Step[] = [];
  const placeholders = new Map<string, { shape: number[] | null; dtype: string }>();
  // An Identity is its input under another name.
  const alias = new Map<string, string>();
  const resolve = (name: string): string => (alias.has(name) ? resolve(alias.get(name)!) : name);
  for (const node of nodes) {
    if (node.op === 'Const') {
      if (!weight(node.name)) return null;
      continue;
    }
    if (node.op === 'Placeholder') {
      const shape = node.attr?.shape;
      const dtype = node.attr?.dtype;
      const type = dtype && 'type' in dtype ? dtype.type : undefined;
      // Inputs checked as the stock executor checks them: float32 or int32 (any other dtype: no plan), any shape when the rank is unknown.
      if (!inputNames.includes(node.name) || (type !== 'DT_FLOAT' && type !== 'DT_INT32')) return null;
      const ranked = shape && 'shape' in shape && !(shape.shape as { unknownRank?: boolean }).unknownRank;
      placeholders.set(node.name, {
        shape: ranked ? (shape.shape.dim ?? []).map((d) => Number(d.size)) : null,
        dtype: type === 'DT_INT32' ? 'int32' : 'float32',
      });
      continue;
    }
    if ((node.input ?? []).some((input) => input.includes(':') || input.startsWith('^'))) return null;
    if (node.op === 'Identity' && node.input?.length === 1) {
      alias.set(node.name, node.input[0]!);
      continue;
    }
    const step = stepOf(node, constant);
    if (!step) return null;
    steps.push(step);
  }
  for (const s of steps) s.inputs = s.inputs.map(resolve);
  const outputs = outputNames.map(resolve);
  const produced = new Set(steps.map((s) => s.name));
  const known = (name: string) => produced.has(name) || inputNames.includes(name) || weight(name) !== undefined;
  if (!outputs.every(known) || inputNames.some((name) => !placeholders.has(name))) return null;
  // Steps in graph order may read a node defined later: order them by their inputs.
  const ordered: Step[] = [];
  const done = new Set(inputNames);
  const pending = [...steps];
  while (pending.length > 0) {
    const next = pending.findIndex((s) => s.inputs.every((input) => done.has(input) || (!produced.has(input) && weight(input))));
    if (next < 0) return null;
    const [s] = pending.splice(next, 1);
    ordered.push(s!);
    done.add(s!.name);
  }
  // After which step each produced tensor is read for the last time; outputs are never disposed.
  const lastRead = new Map<string, number>();
  ordered.forEach((s, i) => {
    for (const input of s.inputs) if (produced.has(input)) lastRead.set(input, i);
  });
  for (const name of outputs) lastRead.set(name, Number.POSITIVE_INFINITY);

  return {
    run(inputs) {
      if (inputs.length !== inputNames.length) throw new Error(`the graph takes ${inputNames.length} inputs, got ${inputs.length}`);
      inputNames.forEach((name, i) => {
        const { shape, dtype } = placeholders.get(name)!;
        const x = inputs[i]!;
        if (x.dtype !== dtype || (shape && (x.rank !== shape.length || shape.some((d, k) => d >= 0 && d !== x.shape[k]))))
          throw new Error(`input ${name} must be ${dtype} [${shape?.join(', ') ?? '?'}], got ${x.dtype} [${x.shape.join(', ')}]`);
      });
      const values = new Map<string, tf.Tensor>(inputNames.map((name, i) => [name, inputs[i]!]));
      const value = (name: string) => values.get(name) ?? weight(name)!;
      const live = new Set<tf.Tensor>();
      const release = (name: string) => {
        const t = values.get(name)!;
        t.dispose();
        live.delete(t);
      };
      try {
        ordered.forEach((s, i) => {
          const out = s.run(s.inputs.map(value));
          values.set(s.name, out);
          live.add(out);
          for (const input of new Set(s.inputs)) if (lastRead.get(input) === i) release(input);
          if (!lastRead.has(s.name)) release(s.name);
        });
        // An output that is an input, a weight or the same tensor as an earlier output is handed back as its own copy.
        return outputs.map((name) => {
          const t = value(name);
          if (!live.has(t)) return tf.clone(t);
          live.delete(t);
          return t;
        });
      } catch (error) {
        for (const t of live) t.dispose();
        throw error;
      }
    },
  };
}
