// One run of a model on decoded inputs: tensors built, the model run, outputs read back, and
// every tensor (inputs, outputs, intermediates) disposed whatever happens. A request's run
// (functions/inference.ts) and a micro-batch of requests (batcher.ts) both go through it.
import * as tf from '@tensorflow/tfjs-core';
import type { LoadedModel } from '../../shared/model-loader.ts';
import type { TensorValues, TypedValues } from '../../shared/codecs.ts';

export interface InputTensor {
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string';
  values: TensorValues;
}

export interface OutputTensor {
  name: string;
  dtype: string;
  shape: number[];
  values: TypedValues;
}

/** Inputs in the model's signature order; outputs in the signature's order. */
export async function predictOnce(model: LoadedModel, inputs: InputTensor[]): Promise<OutputTensor[]> {
  const tensors: tf.Tensor[] = [];
  let outputs: tf.Tensor[] = [];
  try {
    for (const input of inputs) {
      tensors.push(input.dtype === 'string' ? tf.tensor(input.values as Uint8Array[], input.shape, 'string') : tf.tensor(input.values as TypedValues, input.shape, input.dtype));
    }
    outputs = await model.predict(tensors);
    return await Promise.all(
      outputs.map(async (tensor, i) => ({
        name: model.outputs[i]?.name ?? `output_${i}`,
        dtype: tensor.dtype,
        shape: tensor.shape,
        values: (await tensor.data()) as TypedValues,
      })),
    );
  } finally {
    tf.dispose(tensors);
    tf.dispose(outputs);
  }
}
