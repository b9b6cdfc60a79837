// Makes a compiled graph's weights backend tensors with as few fresh copies as the backend allows.
// On the wasm backend each float32 weight is dequantized straight into its tensor's memory on the
// wasm heap, the graph compiler folds into it there, and that memory becomes the graph's tensor;
// elsewhere each weight is one tf.tensor. (tf.io's decoding would add two copies of every weight:
// a slice of the weight data, then its move onto the heap. On a cold process each fresh copy of
// MobileNetV2's 14 MiB costs tens of ms in page faults alone.)
import * as tf from '@tensorflow/tfjs-core';
import type { GraphWeight } from './graph/graphdef.ts';
import type { Float32Target } from './weights.ts';

/** The wasm backend's own calls for tensor memory on its heap (tfjs-backend-wasm's BackendWasm). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  disposeData(dataId: object): boolean;
}

function heapBackend(): HeapBackend | null {
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  const usable = tf.getBackend() === 'wasm' && typeof backend.makeOutput === 'function' && typeof backend.typedArrayFromHeap === 'function' && typeof backend.disposeData === 'function';
  return usable ? (backend as HeapBackend) : null;
}

export class WeightTensors {
  private readonly heap = heapBackend();
  /** Heap memory given out by name, not yet made a tensor or freed. */
  private readonly unclaimed = new Map<string, tf.TensorInfo>();

  /** The decoder's target for float32 weights (shared/weights.ts): tensor memory on the wasm heap, or fresh arrays. */
  readonly target: Float32Target = (spec, count) => {
    if (!this.heap) return new Float32Array(count);
    const info = this.heap.makeOutput(spec.shape, 'float32');
    this.unclaimed.set(spec.name, info);
    return this.heap.typedArrayFromHeap(info);
  };

  /**
   * Call once every weight is decoded, before anything folds into them: gives each weight on the
   * heap a current view (a view taken before the heap last grew is detached).
   */
  settle<W extends { values: Float32Array }>(weights: Map<string, W>): void {
    if (!this.heap) return;
    for (const [name, info] of this.unclaimed) {
      const weight = weights.get(name);
      if (weight) weight.values = this.heap.typedArrayFromHeap(info);
    }
  }

  /**
   * The graph's weights as tensors by name. A weight whose values are a whole settled view
   * becomes a tensor on that memory; anything else is copied in. Heap memory the graph does not
   * use (BatchNormalization vectors folded away) is freed.
   */
  tensors(weights: GraphWeight[], decoded: Map<string, { values: Float32Array }>): tf.NamedTensorMap {
    const onHeap = new Map<Float32Array, tf.TensorInfo>();
    for (const [name, info] of this.unclaimed) {
      const values = decoded.get(name)?.values;
      if (values) onHeap.set(values, info);
    }
    const heapBuffer = onHeap.keys().next().value?.buffer;
    // Before the first new allocation (which may grow the heap and detach every view), each array
    // that lives on the heap but is not a weight's own memory is copied off it.
    const plan = weights.map((weight) => {
      const info = weight.values instanceof Float32Array ? onHeap.get(weight.values) : undefined;
      if (info && tf.util.sizeFromShape(weight.shape) === weight.values.length) {
        onHeap.delete(weight.values as Float32Array);
        return { weight, info };
      }
      return { weight: heapBuffer && weight.values.buffer === heapBuffer ? { ...weight, values: weight.values.slice() } : weight };
    });
    for (const info of onHeap.values()) this.heap!.disposeData(info.dataId);
    this.unclaimed.clear();
    const map: tf.NamedTensorMap = {};
    for (const { weight, info } of plan) {
      map[weight.name] = info ? tf.engine().makeTensorFromTensorInfo({ dataId: info.dataId, shape: weight.shape, dtype: 'float32' }) : tf.tensor(weight.values, weight.shape, weight.dtype);
    }
    return map;
  }

  /** Frees the heap memory no tensor took (a load that failed part-way). */
  dispose(): void {
    for (const info of this.unclaimed.values()) this.heap!.disposeData(info.dataId);
    this.unclaimed.clear();
  }
}
