// Adam with the regularization lab's training controls, which TF.js optimizers lack:
// a learning-rate schedule (set per epoch) and gradient clipping by global norm.
import * as tf from '@tensorflow/tfjs-core';

interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

const asList = (grads: tf.NamedTensorMap): NamedTensor[] => Object.entries(grads).map(([name, tensor]) => ({ name, tensor }));

export type Schedule = { kind: 'constant' } | { kind: 'exponential'; decay: number } | { kind: 'step'; every: number; factor: number } | { kind: 'cosine'; floor: number };

/** Parses `constant`, `exponential[:0.95]`, `step[:10[:0.5]]`, `cosine[:0.01]`. */
export function parseSchedule(text: string): Schedule {
  const [kind, ...args] = text.split(':');
  const num = (i: number, fallback: number, zeroAllowed = false) => {
    if (args[i] === undefined) return fallback;
    const value = Number(args[i]);
    if (args[i]!.trim() === '' || !Number.isFinite(value) || value < 0 || (value === 0 && !zeroAllowed))
      throw new Error(`bad --lr-schedule ${JSON.stringify(text)}: ${JSON.stringify(args[i])} is not a positive number`);
    return value;
  };
  if (kind === 'constant') return { kind };
  if (kind === 'exponential') return { kind, decay: num(0, 0.95) };
  if (kind === 'step') return { kind, every: Math.round(num(0, 10)), factor: num(1, 0.5) };
  if (kind === 'cosine') return { kind, floor: num(0, 0.01, true) };
  throw new Error(`bad --lr-schedule ${JSON.stringify(text)}: use constant, exponential[:decay], step[:every[:factor]] or cosine[:floor]`);
}

/** The learning rate of epoch `epoch` (0-based) of `epochs`. */
export function learningRateAt(schedule: Schedule, base: number, epoch: number, epochs: number): number {
  switch (schedule.kind) {
    case 'constant':
      return base;
    case 'exponential':
      return base * schedule.decay ** epoch;
    case 'step':
      return base * schedule.factor ** Math.floor(epoch / schedule.every);
    case 'cosine': {
      const progress = epochs > 1 ? epoch / (epochs - 1) : 0;
      return base * (schedule.floor + (1 - schedule.floor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}

/** Scales all gradients together so their global L2 norm is at most maxNorm (as tf.clip_by_global_norm). */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): tf.NamedTensorMap {
  return tf.tidy(() => {
    const names = Object.keys(grads);
    const squares = names.map((n) => tf.sum(tf.square(grads[n]!)));
    const norm = tf.sqrt(squares.length === 1 ? squares[0]! : tf.addN(squares));
    const scale = tf.div(maxNorm, tf.maximum(norm, maxNorm));
    return Object.fromEntries(names.map((n) => [n, tf.mul(grads[n]!, scale)]));
  });
}

export interface TrainingOptimizerOptions {
  learningRate: number;
  schedule: Schedule;
  epochs: number;
  /** Clip gradients to this global norm; off when undefined. */
  clipNorm?: number;
}

/** Adam, with the learning rate set each epoch from the schedule and optional gradient clipping. */
export class TrainingOptimizer extends tf.Optimizer {
  static className = 'TrainingOptimizer';
  private readonly adam: tf.AdamOptimizer;
  private rate: number;

  constructor(private readonly options: TrainingOptimizerOptions) {
    super();
    this.rate = options.learningRate;
    this.adam = tf.train.adam(options.learningRate);
  }

  /** Called at the start of each epoch; returns the rate it set. */
  startEpoch(epoch: number): number {
    this.rate = learningRateAt(this.options.schedule, this.options.learningRate, epoch, this.options.epochs);
    // Adam reads this field at every update.
    (this.adam as unknown as { learningRate: number }).learningRate = this.rate;
    return this.rate;
  }

  get learningRate(): number {
    return this.rate;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const grads: tf.NamedTensorMap = Array.isArray(variableGradients) ? Object.fromEntries(variableGradients.map((g) => [g.name, g.tensor])) : variableGradients;
    if (this.options.clipNorm === undefined) {
      this.adam.applyGradients(asList(grads));
      return;
    }
    const clipped = clipByGlobalNorm(grads, this.options.clipNorm);
    this.adam.applyGradients(asList(clipped));
    tf.dispose(Object.values(clipped));
  }

  override dispose(): void {
    this.adam.dispose();
    super.dispose();
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.options.learningRate, clipNorm: this.options.clipNorm ?? null, schedule: JSON.stringify(this.options.schedule) };
  }
}
