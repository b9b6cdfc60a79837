// The tensor side of micro-batching (batcher.ts): which requests can share a run (the same dtype
// and non-batch shape for every input), their inputs joined along the batch axis, and the merged
// run's outputs cut back into each request's rows, in order.
import type { LoadedModel } from '../../shared/model-loader.ts';
import type { TensorValues } from '../../shared/codecs.ts';
import type { InputTensor, OutputTensor } from './predict.ts';

/** A model whose every input has an unknown (-1) leading dimension; a fixed batch size is never merged. */
export function hasBatchAxis(model: LoadedModel): boolean {
  return model.inputs.length > 0 && model.inputs.every((input) => input.shape.length > 0 && input.shape[0] === -1);
}

/** The request's own batch (rows): the leading dimension its inputs share; null when they do not. */
export function requestRows(inputs: InputTensor[]): number | null {
  const rows = inputs[0]?.shape[0];
  if (rows === undefined || rows < 1) return null;
  return inputs.every((input) => input.shape.length > 0 && input.shape[0] === rows) ? rows : null;
}

/** Requests with equal keys can be merged: each input's dtype and shape past the batch axis. */
export function batchKey(inputs: InputTensor[]): string {
  return inputs.map((input) => `${input.dtype}[${input.shape.slice(1).join(',')}]`).join(' ');
}

function concatValues(parts: TensorValues[], length: number): TensorValues {
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as Uint8Array[][]).flat();
  const joined = new (first.constructor as new (n: number) => Exclude<TensorValues, Uint8Array[]>)(length);
  let offset = 0;
  for (const part of parts as Exclude<TensorValues, Uint8Array[]>[]) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

/** The requests' inputs (all of one batchKey) joined along axis 0, in request order. */
export function concatInputs(requests: InputTensor[][]): InputTensor[] {
  return requests[0]!.map((first, i) => {
    const parts = requests.map((inputs) => inputs[i]!);
    const rows = parts.reduce((sum, part) => sum + part.shape[0]!, 0);
    const length = parts.reduce((sum, part) => sum + part.values.length, 0);
    return {
      dtype: first.dtype,
      shape: [rows, ...first.shape.slice(1)],
      values: concatValues(
        parts.map((part) => part.values),
        length,
      ),
    };
  });
}

/**
 * The merged run's outputs cut into each request's rows (copies, as a run of its own returns);
 * null when an output does not have the merged batch as its leading dimension (a model that
 * does not keep rows apart cannot be batched).
 */
export function splitOutputs(outputs: OutputTensor[], rows: number[]): OutputTensor[][] | null {
  const total = rows.reduce((sum, n) => sum + n, 0);
  if (outputs.some((output) => output.shape[0] !== total || output.values.length % total !== 0)) return null;
  const perRequest: OutputTensor[][] = rows.map(() => []);
  for (const output of outputs) {
    const perRow = output.values.length / total;
    let row = 0;
    rows.forEach((n, r) => {
      perRequest[r]!.push({ ...output, shape: [n, ...output.shape.slice(1)], values: output.values.slice(row * perRow, (row + n) * perRow) });
      row += n;
    });
  }
  return perRequest;
}
