// What a trainable model module exports: its data, its layers, its task and its defaults.
// The training job (train/run.ts) is generic over these definitions.
import type * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

export type Task = 'regression' | 'binary-classification' | 'multiclass-classification';

export interface DataOptions {
  /** Keep at most this many training examples (tiny runs for tests and smoke checks). */
  limit?: number;
  /** Seed of the shuffles and splits, so runs are repeatable. */
  seed: number;
  /** Fraction of the training examples the job validates on (loaders that augment split it off themselves). */
  validationSplit: number;
}

export interface Split {
  x: tf.Tensor;
  y: tf.Tensor;
}

export interface Dataset {
  train: Split;
  /** Validation examples split off by the loader (before augmentation); else the job uses validationSplit. */
  validation?: Split;
  /** Held out from training (and from validation): the evaluation set. */
  test: Split;
  /** One line saying what the data is and how it was split. */
  description: string;
  /** Errors of a regression are reported after multiplying by this (model units → real units). */
  targetScale?: number;
  /** The real unit of a regression target (°F, ppm). */
  unit?: string;
  /** Predictions of simple baselines on the test inputs, in model units, e.g. the naive forecast. */
  baselines?: Record<string, tf.Tensor>;
  /** What a caller needs to prepare inputs (vocabulary, normalisation); saved with the model. */
  preprocessing?: Record<string, unknown>;
  /** The source task's data, for a model with `transfer`: its base is trained on this first. */
  source?: Split & { description: string };
}

export interface Regularization {
  /** Dropout rate; 0 turns dropout off. Models choose where it goes. */
  dropout?: number;
  batchNorm?: boolean;
  /** L2 factor of the kernel regularizer on weight layers. */
  l2?: number;
}

/**
 * Transfer learning: a source model is trained first on Dataset.source; its base layers (same
 * names in both models) are copied into the model and frozen while the new head trains for
 * `headEpochs`; then `fineTuneLayers` train again, with the head, at `fineTuneRate` times the
 * learning rate, for the rest of the epochs. The job also trains the model from scratch on the
 * same data and reports it beside the result.
 */
export interface Transfer {
  buildSource(regularization: Regularization): LayersModel;
  sourceEpochs: number;
  sourceBatchSize: number;
  baseLayers: readonly string[];
  fineTuneLayers: readonly string[];
  headEpochs: number;
  fineTuneRate: number;
}

export interface ModelDefinition {
  name: string;
  summary: string;
  task: Task;
  /** Class names for classification, in output order. */
  classes?: string[];
  defaults: { epochs: number; batchSize: number; learningRate: number; validationSplit: number; dropout?: number; lrSchedule?: string };
  /** Which regularization options the architecture has a place for. */
  supports: ReadonlyArray<keyof Regularization>;
  loadData(options: DataOptions): Promise<Dataset>;
  /** An uncompiled model; the job compiles it with the loss below and its optimizer. */
  build(regularization: Regularization): LayersModel;
  loss: string;
  /** Metrics shown during training (TF.js metric names). */
  metrics: readonly string[];
  /** Train a base on another task first (lab 5). */
  transfer?: Transfer;
}
