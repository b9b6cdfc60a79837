// The training job's public face: the models it knows, the job and its options, how a model is saved.
export { findModel, MODELS } from './registry.ts';
export { runTraining, TrainingOptions, type TrainJobOptions } from './train/run.ts';
export { modelFiles } from './train/save.ts';
export type { ModelDefinition } from './types.ts';
export { readDigits } from './data/mnist.ts';
export { permutation } from './data/random.ts';
export { installFastGradients } from './train/fast-gradients.ts';
