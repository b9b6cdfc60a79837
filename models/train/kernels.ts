// Finds the kernels a model's training runs: one training step on a tiny batch under tf.profile,
// on the cpu backend (the reference backend: it registers every kernel that any model here needs).
// The recorded kernels cover the forward pass, the gradient functions of the gradient registry
// (a kernel without a registered gradient fails here, on every backend) and the optimizer update.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

export async function probeTrainingKernels(step: () => Promise<unknown>): Promise<string[]> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    const info = await tf.profile(async () => {
      await step();
      return [];
    });
    // The profile also names op scopes (e.g. fusedMatMul__op of a custom gradient): keep real kernels.
    return [...new Set(info.kernelNames)].filter((name) => tf.getKernel(name, 'cpu')).sort();
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}
