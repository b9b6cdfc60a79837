// Collects a translated Keras model's weights from the file, layer by layer, and names them the
// way TF.js names the variables it builds for the same config, so stock tf.loadLayersModel finds
// every one. Two file layouts: the HDF5 `model_weights/<layer>` groups with `weight_names`
// (Keras 2 model.save and Keras 3 legacy .h5), and the `.keras` `layers/<layer>/.../vars/<i>` tree.
import { ConversionError } from '../../../shared/errors.ts';
import type { DecodedWeight } from '../../model.ts';
import type { KerasLayer } from './config-types.ts';
import { attrStrings, child, childGroup, Dataset, type Group, readDataset, type NumericArray } from './hdf5.ts';
import { isModel, tfjsWeightNames } from './layers.ts';

/** Where the weights of one model's layers live. */
export interface WeightScope {
  /** Arrays of one non-model layer, in Keras order (which is TF.js order for every class converted). */
  weightsOf(layer: KerasLayer, expected: number): NumericArray[];
  /** Scope of a model nested as a layer. */
  nested(model: KerasLayer): WeightScope;
  /** Called when the model is done: throws if the file holds weights no layer took. */
  finish(): void;
}

const layerName = (layer: KerasLayer): string => String(layer.name ?? layer.config.name);

/**
 * The weights of a nested model in a legacy HDF5 file: one flat list, trainable weights first
 * and non-trainable ones (BatchNormalization's moving statistics) after. Each layer takes the
 * entries whose path names it (`bn_Conv1/gamma:0`, `model3/Conv1/kernel:0`) in file order; a layer
 * no name matches takes the next untaken entries in order.
 */
class ListScope implements WeightScope {
  private readonly taken = new Set<number>();
  constructor(
    private readonly entries: { name: string; array: NumericArray }[],
    private readonly where: string,
  ) {}
  weightsOf(layer: KerasLayer, expected: number): NumericArray[] {
    const name = layerName(layer);
    let picked = this.entries.flatMap((e, i) => (!this.taken.has(i) && e.name.split('/').slice(0, -1).includes(name) ? [i] : []));
    if (picked.length === 0) picked = this.entries.flatMap((_, i) => (this.taken.has(i) ? [] : [i])).slice(0, expected);
    for (const i of picked) this.taken.add(i);
    return picked.map((i) => this.entries[i]!.array);
  }
  nested(): WeightScope {
    return this;
  }
  finish(): void {
    if (this.taken.size !== this.entries.length) {
      throw new ConversionError(`${this.where} holds ${this.entries.length} weights but the model's layers take ${this.taken.size}`);
    }
  }
}

function readNamed(group: Group, names: string[]): NumericArray[] {
  return names.map((name) => {
    const node = group.get(name);
    if (!(node instanceof Dataset)) throw new ConversionError(`weight ${name} listed in ${group.name} is missing from the file`);
    return readDataset(node);
  });
}

/** HDF5 `model_weights`: one group per top-level layer whose `weight_names` attribute lists its weights in order. */
export class H5Scope implements WeightScope {
  constructor(private readonly root: Group) {}
  private group(layer: KerasLayer): Group | undefined {
    return childGroup(this.root, layerName(layer));
  }
  weightsOf(layer: KerasLayer, expected: number): NumericArray[] {
    const group = this.group(layer);
    if (!group) {
      if (expected === 0) return [];
      throw new ConversionError(`layer ${layerName(layer)} has no weights group in the file's model_weights`);
    }
    return readNamed(group, attrStrings(group, 'weight_names') ?? []);
  }
  nested(model: KerasLayer): WeightScope {
    const group = this.group(model);
    const names = group ? (attrStrings(group, 'weight_names') ?? []) : [];
    const arrays = group ? readNamed(group, names) : [];
    return new ListScope(
      arrays.map((array, i) => ({ name: names[i]!, array })),
      `model_weights/${layerName(model)}`,
    );
  }
  finish(): void {}
}

/** `vars/0..n-1` of a `.keras` group, in index order. */
function ownVars(group: Group): NumericArray[] {
  const vars = childGroup(group, 'vars');
  if (!vars) return [];
  const indices = vars.keys
    .map(Number)
    .filter(Number.isInteger)
    .sort((a, b) => a - b);
  return indices.map((i) => {
    const node = child(vars, String(i));
    if (!(node instanceof Dataset)) throw new ConversionError(`${vars.name}/${i} is not a dataset`);
    return readDataset(node);
  });
}

/** Keras orders a MultiHeadAttention's weights query, key, value, output; its file holds `_query_dense`, ... */
const ATTENTION_PARTS = ['query', 'key', 'value', 'output'];
const attentionRank = (key: string): number => ATTENTION_PARTS.findIndex((part) => key.replace(/^_/, '').startsWith(part));

/**
 * A `.keras` layer's variables: its own, then those of the objects it tracks (an RNN's `cell`,
 * TimeDistributed's `layer`, MultiHeadAttention's projections). Random-seed state
 * (`seed_generator*`) is not a weight. `own` may be absent and `children` flat (Windows-saved files).
 */
function layerVars(own: Group | undefined, children: [string, Group][], className: string): NumericArray[] {
  if (className === 'Bidirectional') {
    const part = (key: string): NumericArray[] => children.filter(([k]) => k === key).flatMap(([, sub]) => treeVars(sub, ''));
    return [...part('forward_layer'), ...part('backward_layer')];
  }
  // Keras visits attributes in sorted order, private (`_x`) ones last.
  const sortKey = (key: string) => (key.startsWith('_') ? `~${key}` : key);
  const order = (a: string, b: string) => (className === 'MultiHeadAttention' ? attentionRank(a) - attentionRank(b) : sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0);
  const tracked = children.filter(([key]) => key !== 'vars' && !key.startsWith('seed_generator')).sort(([a], [b]) => order(a, b));
  return [...(own ? ownVars(own) : []), ...tracked.flatMap(([, sub]) => treeVars(sub, ''))];
}

function treeVars(group: Group, className: string): NumericArray[] {
  const children = group.keys.flatMap((key): [string, Group][] => {
    const sub = key === 'vars' ? undefined : childGroup(group, key);
    return sub ? [[key, sub]] : [];
  });
  return layerVars(group, children, className);
}

/** Keras 3's naming.to_snake_case: "BatchNormalization" → "batch_normalization", "Conv2D" → "conv2d". */
export function kerasSnakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * Group names of a model's layers in a `.keras` weights file. Keras 3 does not use layer names
 * there: each layer of a model's `layers` list is stored under its snake_case class name, numbered
 * per class in list order (dense, dense_1, conv2d, ...). Keras 2.13-2.15 stored them under
 * `_layer_checkpoint_dependencies/<layer name>`.
 */
function groupNames(layers: KerasLayer[], byLayerName: boolean): Map<KerasLayer, string> {
  const names = new Map<KerasLayer, string>();
  const used = new Map<string, number>();
  for (const layer of layers) {
    if (byLayerName) {
      names.set(layer, layerName(layer));
      continue;
    }
    const base = kerasSnakeCase(layer.class_name);
    const count = used.get(base);
    used.set(base, count === undefined ? 0 : count + 1);
    names.set(layer, count === undefined ? base : `${base}_${count + 1}`);
  }
  return names;
}

const LEGACY_CONTAINER = '_layer_checkpoint_dependencies';
/** Keras 2.13-2.15 saving on Windows joins paths with `\`: `layers\dense\vars` is one root group. */
const FLAT_PREFIXES = [`${LEGACY_CONTAINER}\\`, 'layers\\'];

/** `.keras` weights: `layers/<snake_case class>[_n]/...` (Keras 3) or `_layer_checkpoint_dependencies/<layer name>/...` (Keras 2.13+). */
export class V3Scope implements WeightScope {
  private readonly names: Map<KerasLayer, string>;
  constructor(
    private readonly root: Group,
    model: KerasLayer,
  ) {
    const layers = (model.config.layers ?? []) as KerasLayer[];
    this.names = groupNames(layers, root.name.split('/').pop() === LEGACY_CONTAINER);
  }
  private readonly claimed = new Set<string>();
  /** The root key of a layer's weights, claimed: its group's name, else a flat (Windows-saved) key. */
  private keyOf(layer: KerasLayer): string | undefined {
    const name = this.names.get(layer);
    if (name === undefined) return undefined;
    const key = childGroup(this.root, name) ? name : this.flatKey(name);
    if (key !== undefined) this.claimed.add(key);
    return key;
  }
  private group(layer: KerasLayer): Group | undefined {
    const key = this.keyOf(layer);
    return key === undefined ? undefined : childGroup(this.root, key);
  }
  /**
   * Keras 2.13-2.15 on Windows flattens the tree into root groups named `<container>\<name>[\<object>]`.
   * Under `layers\`, <name> is the class counter. Under `_layer_checkpoint_dependencies\`, it is neither
   * the layer's name nor its class counter (a 3-Dense model: dense, dense_2, dense_4, and the layers
   * dense_3-5): take the next unclaimed one of the same class (else any) in numeric order.
   */
  private flatKey(name: string): string | undefined {
    for (const prefix of FLAT_PREFIXES) {
      const keys = [...new Set(this.root.keys.filter((key) => key.startsWith(prefix)).map((key) => prefix + key.slice(prefix.length).split('\\')[0]))];
      if (keys.length === 0) continue;
      const free = keys.filter((key) => !this.claimed.has(key));
      if (prefix === 'layers\\') return free.includes(prefix + name) ? prefix + name : undefined;
      const suffix = (key: string) => Number(/_(\d+)$/.exec(key)?.[1] ?? 0);
      const base = prefix + name.replace(/_\d+$/, '');
      const sameClass = free.filter((key) => key.replace(/_\d+$/, '') === base);
      return (sameClass.length > 0 ? sameClass : free).sort((a, b) => suffix(a) - suffix(b) || (a < b ? -1 : 1))[0];
    }
    return undefined;
  }
  /** The flat groups `<key>\<object>` of the objects a layer at a flat key tracks. */
  private flatChildren(key: string): [string, Group][] {
    return this.root.keys.flatMap((k): [string, Group][] => {
      const sub = k.startsWith(`${key}\\`) ? childGroup(this.root, k) : undefined;
      return sub ? [[k.slice(key.length + 1), sub]] : [];
    });
  }
  weightsOf(layer: KerasLayer, expected: number): NumericArray[] {
    const name = this.names.get(layer);
    const key = this.keyOf(layer);
    if (key === undefined) {
      if (expected === 0) return [];
      throw new ConversionError(`layer ${layerName(layer)} has no weights in model.weights.h5 (looked for ${this.root.name}/${name ?? '?'})`);
    }
    const own = childGroup(this.root, key);
    return key === name ? treeVars(own!, layer.class_name) : layerVars(own, this.flatChildren(key), layer.class_name);
  }
  nested(model: KerasLayer): WeightScope {
    const group = this.group(model);
    const inner = group && (childGroup(group, 'layers') ?? childGroup(group, LEGACY_CONTAINER));
    if (!inner) throw new ConversionError(`nested model ${layerName(model)} has no layers group in model.weights.h5`);
    return new V3Scope(inner, model);
  }
  finish(): void {}
}

const describeShape = (shape: number[]): string => `[${shape.join(', ')}]`;

/** Every weight of the model, TF.js-named, in layer order. */
export function collectWeights(model: KerasLayer, scope: WeightScope): DecodedWeight[] {
  const out: DecodedWeight[] = [];
  const layers = (model.config.layers ?? []) as KerasLayer[];
  for (const layer of layers) {
    if (isModel(layer.class_name)) {
      out.push(...collectWeights(layer, scope.nested(layer)));
      continue;
    }
    const names = tfjsWeightNames(layer);
    if (names.length === 0) continue; // weightless: whatever state Keras saved for it (seeds) is not a weight
    const arrays = scope.weightsOf(layer, names.length);
    if (arrays.length === 0) {
      throw new ConversionError(
        `layer ${layerName(layer)} (${layer.class_name}) has no weights in the file, which TF.js needs (${names.join(', ')}): ` +
          `a model saved before it was built or trained stores none; build or train it, then save it again`,
      );
    }
    if (arrays.length !== names.length) {
      throw new ConversionError(
        `layer ${layerName(layer)} (${layer.class_name}) has ${arrays.length} weights in the file ` +
          `(${arrays.map((a) => describeShape(a.shape)).join(', ') || 'none'}) but TF.js expects ${names.length} (${names.join(', ') || 'none'})`,
      );
    }
    if (layer.class_name === 'GRU' && arrays[2] && arrays[2].shape.length === 2 && layer.config.reset_after !== true) {
      throw new ConversionError(
        `layer ${layerName(layer)} (GRU) has a ${describeShape(arrays[2].shape)} bias: it was trained with reset_after=True, which TF.js 4.22 GRU does not implement; retrain with reset_after=False`,
      );
    }
    arrays.forEach((array, i) => out.push({ name: names[i]!, shape: array.shape, dtype: array.dtype, values: array.values }));
  }
  scope.finish();
  return out;
}
