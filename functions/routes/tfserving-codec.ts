// TF Serving REST predict bodies to input tensors and outputs back to `predictions`
// (row format, from `instances`) or `outputs` (columnar, from `inputs`).
// {"b64": ...} leaves are bytes: string inputs take them as values; numeric inputs take
// them as the raw little-endian bytes of one instance (row) or of the whole tensor (columnar).
import {
  allocate,
  asTensorDtype,
  CodecError,
  checkShape,
  decodeRawBytes,
  decodeValues,
  elementCount,
  isB64Value,
  jsonValues,
  nest,
  nestedShape,
  type TensorDtype,
  type TypedValues,
} from '../../shared/codecs.ts';
import type { TensorSignature } from '../../shared/schemas/edgeflow-json.ts';
import { checkBatch, ElementBudget, type Limits } from '../limits.ts';
import type { InputTensor, OutputTensor } from '../inference.ts';

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value) && !isB64Value(value);

function concat(parts: TypedValues[], dtype: TensorDtype): TypedValues {
  const out = allocate(
    dtype,
    parts.reduce((sum, p) => sum + p.length, 0),
  );
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The instance shape b64 raw bytes fill: every dimension after the batch must be known. */
function b64InstanceShape(signature: TensorSignature, field: string): number[] {
  const inner = signature.shape.slice(1);
  if (inner.some((d) => d < 0)) throw new CodecError(field, `b64 raw bytes need a fully known instance shape; ${signature.name} is [${signature.shape.join(', ')}]`);
  return inner;
}

/** One input's values across instances (row format); base names the field in errors. */
function rowInput(values: unknown[], signature: TensorSignature, base: string, field: (i: number) => string, budget: ElementBudget): InputTensor {
  const dtype = asTensorDtype(signature.dtype);
  const n = values.length;
  if (isB64Value(values[0]) && dtype !== 'string') {
    const inner = b64InstanceShape(signature, field(0));
    const count = elementCount(inner);
    budget.take(count * n, field(0));
    const parts = values.map((value, i) => {
      if (!isB64Value(value)) throw new CodecError(field(i), 'mixes b64 and plain values across instances');
      return decodeRawBytes(value.b64, dtype, count, `${field(i)}.b64`);
    });
    return { shape: [n, ...inner], dtype, values: concat(parts, dtype) };
  }
  const shape = [n, ...nestedShape(values[0])];
  if (signature.shape.length === 0) throw new CodecError(base, `${signature.name} is a scalar input: use the columnar "inputs" format`);
  checkShape(shape, signature.shape, base);
  budget.take(elementCount(shape), base);
  return { shape, dtype, values: decodeValues(values, shape, base, { dtype }) };
}

export function decodeInstances(instances: unknown[], signature: TensorSignature[], limits: Limits): InputTensor[] {
  checkBatch(instances.length, 'instances', limits);
  const budget = new ElementBudget(limits);
  if (signature.length === 1 && !isPlainObject(instances[0])) {
    return [rowInput(instances, signature[0]!, 'instances', (i) => `instances[${i}]`, budget)];
  }
  const names = new Set(signature.map((s) => s.name));
  instances.forEach((instance, i) => {
    if (!isPlainObject(instance)) throw new CodecError(`instances[${i}]`, `the model has ${signature.length} inputs (${[...names].join(', ')}): each instance must be an object keyed by input name`);
    for (const key of Object.keys(instance)) if (!names.has(key)) throw new CodecError(`instances[${i}].${key}`, `the model has no input ${key} (inputs: ${[...names].join(', ')})`);
  });
  return signature.map((s) => {
    const values = instances.map((instance, i) => {
      const value = (instance as Record<string, unknown>)[s.name];
      if (value === undefined) throw new CodecError(`instances[${i}].${s.name}`, 'missing');
      return value;
    });
    return rowInput(values, s, `instances[*].${s.name}`, (i) => `instances[${i}].${s.name}`, budget);
  });
}

function columnInput(value: unknown, signature: TensorSignature, field: string, limits: Limits, budget: ElementBudget): InputTensor {
  const dtype = asTensorDtype(signature.dtype);
  if (isB64Value(value) && dtype !== 'string') {
    const inner = b64InstanceShape(signature, field);
    const bytesPerItem = elementCount(inner) * (dtype === 'bool' ? 1 : 4);
    const byteLength = Math.floor((value.b64.replace(/\s+/g, '').length * 3) / 4) - (value.b64.endsWith('==') ? 2 : value.b64.endsWith('=') ? 1 : 0);
    const batch = bytesPerItem > 0 ? Math.floor(byteLength / bytesPerItem) : 0;
    checkBatch(batch, field, limits);
    budget.take(batch * elementCount(inner), field);
    return { shape: [batch, ...inner], dtype, values: decodeRawBytes(value.b64, dtype, batch * elementCount(inner), `${field}.b64`) };
  }
  const shape = nestedShape(value);
  checkShape(shape, signature.shape, field);
  if (shape.length > 0) checkBatch(shape[0]!, field, limits);
  budget.take(elementCount(shape), field);
  return { shape, dtype, values: decodeValues(value, shape, field, { dtype }) };
}

export function decodeColumns(inputs: unknown, signature: TensorSignature[], limits: Limits): InputTensor[] {
  const budget = new ElementBudget(limits);
  if (signature.length === 1 && !isPlainObject(inputs)) return [columnInput(inputs, signature[0]!, 'inputs', limits, budget)];
  if (!isPlainObject(inputs)) throw new CodecError('inputs', `the model has ${signature.length} inputs (${signature.map((s) => s.name).join(', ')}): give an object keyed by input name`);
  const names = new Set(signature.map((s) => s.name));
  for (const key of Object.keys(inputs)) if (!names.has(key)) throw new CodecError(`inputs.${key}`, `the model has no input ${key} (inputs: ${[...names].join(', ')})`);
  return signature.map((s) => {
    const value = inputs[s.name];
    if (value === undefined) throw new CodecError(`inputs.${s.name}`, 'missing');
    return columnInput(value, s, `inputs.${s.name}`, limits, budget);
  });
}

const outputJson = (output: OutputTensor, values: TypedValues, shape: number[]) => nest(jsonValues(values, output.dtype), shape);

/** Row format: one prediction per instance; an object per instance when there are several outputs. */
export function encodePredictions(outputs: OutputTensor[], batch: number): unknown[] {
  const perItem = outputs.map((o) => {
    const inner = o.shape.slice(1);
    const size = elementCount(inner);
    return (i: number) => outputJson(o, o.values.subarray(i * size, (i + 1) * size), inner);
  });
  const predictions = new Array<unknown>(batch);
  for (let i = 0; i < batch; i++) {
    predictions[i] = outputs.length === 1 ? perItem[0]!(i) : Object.fromEntries(outputs.map((o, k) => [o.name, perItem[k]!(i)]));
  }
  return predictions;
}

/** Columnar format: the whole tensor; an object keyed by name when there are several outputs. */
export function encodeOutputs(outputs: OutputTensor[]): unknown {
  if (outputs.length === 1) return outputJson(outputs[0]!, outputs[0]!.values, outputs[0]!.shape);
  return Object.fromEntries(outputs.map((o) => [o.name, outputJson(o, o.values, o.shape)]));
}
