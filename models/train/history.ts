// Per-epoch record of a training run, written as it goes: TensorBoard event files
// (<logdir>/train and <logdir>/validation) with each layer's weight histograms in train/, a CSV,
// and (at the end) a PNG plot.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { EventFileWriter } from './tensorboard.ts';

export interface EpochRecord {
  /** 1-based. */
  epoch: number;
  /** Training loss and metrics (loss, acc, mae, ...). */
  train: Record<string, number>;
  /** Validation loss and metrics, when there is a validation split. */
  validation: Record<string, number>;
  learningRate: number;
  seconds: number;
}

/** Splits TF.js epoch logs ({loss, acc, val_loss, val_acc}) into training and validation values. */
export function splitLogs(logs: Record<string, number>): { train: Record<string, number>; validation: Record<string, number> } {
  const train: Record<string, number> = {};
  const validation: Record<string, number> = {};
  for (const [key, value] of Object.entries(logs)) {
    if (typeof value !== 'number') continue;
    if (key.startsWith('val_')) validation[key.slice(4)] = value;
    else train[key] = value;
  }
  return { train, validation };
}

export class RunLog {
  readonly epochs: EpochRecord[] = [];
  private readonly trainEvents: EventFileWriter;
  private readonly validationEvents: EventFileWriter;

  constructor(readonly logdir: string) {
    this.trainEvents = new EventFileWriter(join(logdir, 'train'));
    this.validationEvents = new EventFileWriter(join(logdir, 'validation'));
  }

  get eventFiles(): { train: string; validation: string } {
    return { train: this.trainEvents.path, validation: this.validationEvents.path };
  }

  add(record: EpochRecord): void {
    this.epochs.push(record);
    // Keras's tag names (epoch_loss, epoch_acc, ...), the same in both runs so TensorBoard overlays them.
    const tags = (values: Record<string, number>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [`epoch_${k}`, v]));
    this.trainEvents.scalars(record.epoch, { ...tags(record.train), epoch_learning_rate: record.learningRate });
    if (Object.keys(record.validation).length > 0) this.validationEvents.scalars(record.epoch, tags(record.validation));
    writeFileSync(join(this.logdir, 'history.csv'), this.csv());
  }

  /** Histograms of every layer's weights after `epoch`, tagged <layer>/<weight> (e.g. dense_Dense1/kernel). */
  async weights(epoch: number, model: LayersModel): Promise<void> {
    const values: Record<string, ArrayLike<number>> = {};
    for (const layer of model.layers) {
      for (const weight of layer.weights) values[`${layer.name}/${weight.originalName.split('/').pop()}`] = await weight.read().data();
    }
    this.trainEvents.histograms(epoch, values);
  }

  /** Metric names seen in training, loss first. */
  metricNames(): string[] {
    const names = new Set<string>();
    for (const record of this.epochs) for (const key of Object.keys(record.train)) names.add(key);
    return ['loss', ...[...names].filter((n) => n !== 'loss')];
  }

  csv(): string {
    const names = this.metricNames();
    const hasValidation = this.epochs.some((r) => Object.keys(r.validation).length > 0);
    const header = ['epoch', ...names, ...(hasValidation ? names.map((n) => `val_${n}`) : []), 'learning_rate', 'seconds'];
    const value = (v: number | undefined) => (v === undefined ? '' : String(v));
    const rows = this.epochs.map((r) => [
      String(r.epoch),
      ...names.map((n) => value(r.train[n])),
      ...(hasValidation ? names.map((n) => value(r.validation[n])) : []),
      value(r.learningRate),
      r.seconds.toFixed(3),
    ]);
    return [header, ...rows].map((row) => row.join(',')).join('\n') + '\n';
  }
}
