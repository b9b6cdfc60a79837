// The per-epoch progress bar: redrawn in place on a terminal, one summary line per epoch otherwise.

export interface ProgressOutput {
  write(text: string): void;
  isTTY?: boolean;
}

const WIDTH = 30;

export const formatValues = (values: Record<string, number>) =>
  Object.entries(values)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0) ? v.toExponential(3) : v.toFixed(4)}`)
    .join(' · ');

export class ProgressBar {
  private started = 0;

  constructor(
    private readonly out: ProgressOutput,
    private readonly epochs: number,
    private readonly batchesPerEpoch: number,
  ) {}

  private bar(done: number): string {
    const filled = Math.round((WIDTH * done) / this.batchesPerEpoch);
    return `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled < WIDTH ? '>' : '=') : ''}${' '.repeat(WIDTH - filled)}]`;
  }

  private label(epoch: number): string {
    return `epoch ${String(epoch + 1).padStart(String(this.epochs).length)}/${this.epochs}`;
  }

  startEpoch(): void {
    this.started = Date.now();
  }

  batch(epoch: number, batch: number, values: Record<string, number>): void {
    if (!this.out.isTTY) return;
    const done = Math.min(batch + 1, this.batchesPerEpoch);
    this.out.write(`\r${this.label(epoch)} ${this.bar(done)} ${done}/${this.batchesPerEpoch} ${formatValues(values)}\x1b[K`);
  }

  endEpoch(epoch: number, values: Record<string, number>): void {
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    this.out.write(`${this.out.isTTY ? '\r' : ''}${this.label(epoch)} ${this.bar(this.batchesPerEpoch)} ${seconds}s ${formatValues(values)}${this.out.isTTY ? '\x1b[K' : ''}\n`);
  }
}
