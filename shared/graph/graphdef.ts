// Builders for the GraphDef JSON that stock `tf.loadGraphModel` reads (model.json's
// modelTopology.node of a graph model): Placeholder, Const and op nodes with TensorFlow's attr
// encodings (strings base64, integers as decimal strings, lists under `list`). Knows nothing of
// Keras: shared/graph/compile.ts decides what to emit.

export type AttrValue =
  | { type: string }
  | { s: string }
  | { i: string }
  | { f: number }
  | { b: boolean }
  | { list: { i?: string[]; s?: string[]; f?: number[] } }
  | { shape: { dim: { size: string }[] } }
  | { tensor: { dtype: string; tensorShape: { dim?: { size: string }[] } } };

export interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, AttrValue>;
}

/** A constant's values: the weights manifest entry named like its Const node. */
export interface GraphWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

const base64 = (text: string): string => btoa(text);
const TF_DTYPES = { float32: 'DT_FLOAT', int32: 'DT_INT32' } as const;

export const attr = {
  float: (): AttrValue => ({ type: 'DT_FLOAT' }),
  dtype: (dtype: 'float32' | 'int32'): AttrValue => ({ type: TF_DTYPES[dtype] }),
  string: (text: string): AttrValue => ({ s: base64(text) }),
  int: (value: number): AttrValue => ({ i: String(value) }),
  number: (value: number): AttrValue => ({ f: value }),
  bool: (value: boolean): AttrValue => ({ b: value }),
  ints: (values: number[]): AttrValue => ({ list: { i: values.map(String) } }),
  strings: (values: string[]): AttrValue => ({ list: { s: values.map(base64) } }),
  shape: (shape: number[]): AttrValue => ({ shape: { dim: shape.map((d) => ({ size: String(d) })) } }),
};

/** Readers of the same encodings (the inverse of `attr`), each with the value an absent attr means. */
export const readAttr = {
  ints: (a: AttrValue | undefined, fallback: number[] = []): number[] => (a && 'list' in a && a.list.i ? a.list.i.map(Number) : fallback),
  string: (a: AttrValue | undefined, fallback = ''): string => (a && 's' in a ? atob(a.s) : fallback),
  strings: (a: AttrValue | undefined): string[] => (a && 'list' in a && a.list.s ? a.list.s.map((s) => atob(s)) : []),
  bool: (a: AttrValue | undefined): boolean => Boolean(a && 'b' in a && a.b),
};

/** The nodes of a model.json's modelTopology: a graph model's GraphDef nodes, [] for anything else. */
export function graphNodes(modelTopology: unknown): GraphNode[] {
  const nodes = (modelTopology as { node?: unknown } | null | undefined)?.node;
  return Array.isArray(nodes) ? (nodes as GraphNode[]) : [];
}

/** Collects nodes and the constants they read, naming them uniquely. */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly weights: GraphWeight[] = [];
  private readonly names = new Set<string>();

  /** Names only an `exact` op may take (the model's outputs). */
  reserve(names: string[]): void {
    for (const reserved of names) this.names.add(reserved);
  }

  /** A name not used yet: `base`, else `base_1`, `base_2`, ... */
  unique(base: string): string {
    let name = base;
    for (let n = 1; this.names.has(name); n++) name = `${base}_${n}`;
    this.names.add(name);
    return name;
  }

  placeholder(name: string, shape: number[], dtype: 'float32' | 'int32' = 'float32'): string {
    const unique = this.unique(name);
    this.nodes.push({ name: unique, op: 'Placeholder', attr: { shape: attr.shape(shape), dtype: attr.dtype(dtype) } });
    return unique;
  }

  constant(name: string, shape: number[], values: Float32Array | Int32Array): string {
    const unique = this.unique(name);
    const dtype = values instanceof Int32Array ? 'int32' : 'float32';
    this.nodes.push({
      name: unique,
      op: 'Const',
      attr: { value: { tensor: { dtype: TF_DTYPES[dtype], tensorShape: shape.length ? { dim: shape.map((d) => ({ size: String(d) })) } : {} } }, dtype: attr.dtype(dtype) },
    });
    this.weights.push({ name: unique, shape, dtype, values });
    return unique;
  }

  ints(name: string, values: number[]): string {
    return this.constant(name, [values.length], Int32Array.from(values));
  }

  op(name: string, op: string, input: string[], attrs: Record<string, AttrValue> = {}, options: { exact?: boolean } = {}): string {
    const unique = options.exact ? name : this.unique(name);
    this.nodes.push({ name: unique, op, input, attr: attrs });
    return unique;
  }
}
