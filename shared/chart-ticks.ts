// Axis scales of the training curves, shared by the history.png plot (models/train/plot.ts) and
// the console's SVG charts: loss on a log scale (when every value is positive) with a tick at
// each decade (1-2-5 within few decades), other metrics linear at 1-2-5 steps; short tick labels.

/** A tick's label: up to 3 significant digits, exponent form past 1000 or under 0.01. */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(1).replace('e+', 'e');
  return Number(v.toPrecision(3)).toString();
}

/** Linear ticks at a 1, 2 or 5 step covering [lo, hi], about five of them. */
export function niceTicks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** Log ticks over [lo, hi] (log10 units): each decade, with 2 and 5 when there are few decades. */
export function logTicks(lo: number, hi: number): number[] {
  const first = Math.floor(lo);
  const last = Math.ceil(hi);
  const mantissas = last - first <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let d = first; d <= last; d++) for (const m of mantissas) if (Math.log10(m * 10 ** d) <= last + 1e-9) ticks.push(Number((m * 10 ** d).toPrecision(6)));
  return ticks.filter((v, i) => i === 0 || Math.log10(v) >= lo - 1e-9 || Math.log10(ticks[i + 1] ?? v) > lo);
}

export interface AxisScale {
  log: boolean;
  /** Value → axis units (log10 on a log scale). */
  f: (v: number) => number;
  /** The axis range in axis units, covering the data and every tick. */
  lo: number;
  hi: number;
  ticks: number[];
}

/** The y scale of a metric's values: log for a loss whose values are all positive. */
export function metricScale(metric: string, values: number[]): AxisScale {
  const log = /loss/i.test(metric) && values.every((v) => v > 0);
  const f = (v: number) => (log ? Math.log10(v) : v);
  let lo = Math.min(...values.map(f));
  let hi = Math.max(...values.map(f));
  if (hi - lo < 1e-12) [lo, hi] = [lo - 0.5, hi + 0.5];
  const ticks = log ? logTicks(lo, hi) : niceTicks(lo, hi);
  return { log, f, lo: Math.min(lo, f(ticks[0]!)), hi: Math.max(hi, f(ticks[ticks.length - 1]!)), ticks };
}
