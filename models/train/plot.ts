// A PNG plot of the per-epoch history (pngjs): one panel per metric, training in blue and
// validation in orange, with axis ticks labelled by a built-in 3x5 pixel font; loss on a log
// scale, ticks at 1-2-5 steps (decades on log), the epoch axis titled.
import { PNG } from 'pngjs';
import { metricScale, tickLabel } from '../../shared/chart-ticks.ts';
import type { EpochRecord } from './history.ts';

type Rgb = [number, number, number];
const TRAIN: Rgb = [31, 119, 180];
const VALIDATION: Rgb = [255, 127, 14];
const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [225, 225, 225];
const TEXT: Rgb = [30, 30, 30];

// 3x5 glyphs, rows top to bottom, 3 bits each (4 = left pixel).
const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 2, 2],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  '+': [0, 2, 7, 2, 0],
  _: [0, 0, 0, 0, 7],
  ' ': [0, 0, 0, 0, 0],
  ':': [0, 2, 0, 2, 0],
  a: [2, 5, 7, 5, 5],
  b: [6, 5, 6, 5, 6],
  c: [7, 4, 4, 4, 7],
  d: [6, 5, 5, 5, 6],
  e: [7, 4, 7, 4, 7],
  f: [7, 4, 7, 4, 4],
  g: [7, 4, 5, 5, 7],
  h: [5, 5, 7, 5, 5],
  i: [7, 2, 2, 2, 7],
  j: [1, 1, 1, 5, 7],
  k: [5, 5, 6, 5, 5],
  l: [4, 4, 4, 4, 7],
  m: [5, 7, 7, 5, 5],
  n: [6, 5, 5, 5, 5],
  o: [7, 5, 5, 5, 7],
  p: [7, 5, 7, 4, 4],
  q: [7, 5, 5, 7, 1],
  r: [6, 5, 6, 5, 5],
  s: [7, 4, 7, 1, 7],
  t: [7, 2, 2, 2, 2],
  u: [5, 5, 5, 5, 7],
  v: [5, 5, 5, 5, 2],
  w: [5, 5, 7, 7, 5],
  x: [5, 5, 2, 5, 5],
  y: [5, 5, 2, 2, 2],
  z: [7, 1, 2, 4, 7],
};

class Canvas {
  readonly png: PNG;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.png.data.fill(255);
  }
  pixel(x: number, y: number, [r, g, b]: Rgb): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    this.png.data[i] = r;
    this.png.data[i + 1] = g;
    this.png.data[i + 2] = b;
    this.png.data[i + 3] = 255;
  }
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, thick = 1): void {
    const steps = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      for (let dx = 0; dx < thick; dx++) for (let dy = 0; dy < thick; dy++) this.pixel(x + dx - (thick >> 1), y + dy - (thick >> 1), color);
    }
  }
  text(x: number, y: number, text: string, color: Rgb, scale = 2): void {
    for (const ch of text.toLowerCase()) {
      const glyph = FONT[ch] ?? FONT[' ']!;
      glyph.forEach((row, r) => {
        for (let c = 0; c < 3; c++) if (row & (4 >> c)) for (let sx = 0; sx < scale; sx++) for (let sy = 0; sy < scale; sy++) this.pixel(x + c * scale + sx, y + r * scale + sy, color);
      });
      x += 4 * scale;
    }
  }
}

const textWidth = (text: string, scale = 2) => text.length * 4 * scale;

function panel(canvas: Canvas, x0: number, y0: number, w: number, h: number, title: string, series: Array<{ points: Array<[number, number]>; color: Rgb }>): void {
  const left = x0 + 70;
  const right = x0 + w - 12;
  const top = y0 + 30;
  const bottom = y0 + h - 40;
  canvas.text(x0 + (w - textWidth(title)) / 2, y0 + 8, title, TEXT);
  const all = series.flatMap((s) => s.points).filter(([, v]) => Number.isFinite(v));
  if (all.length === 0) return;
  const xMax = Math.max(2, ...all.map(([e]) => e));
  // Loss spans decades: log scale (when every value is positive), ticks at 1-2-5 steps.
  const { log, f, lo, hi, ticks } = metricScale(
    title,
    all.map(([, v]) => v),
  );
  const px = (e: number) => left + ((e - 1) / (xMax - 1)) * (right - left);
  const py = (v: number) => bottom - ((f(v) - lo) / (hi - lo)) * (bottom - top);
  for (const v of ticks) {
    canvas.line(left, py(v), right, py(v), GRID);
    const label = tickLabel(v);
    canvas.text(left - 6 - textWidth(label), py(v) - 5, label, TEXT);
  }
  if (log) canvas.text(x0 + 6, y0 + 8, 'log scale', AXIS);
  canvas.text((left + right) / 2 - textWidth('epoch') / 2, bottom + 20, 'epoch', TEXT);
  const xTicks = Math.min(xMax - 1, 6);
  for (let t = 0; t <= xTicks; t++) {
    const e = Math.round(1 + ((xMax - 1) * t) / xTicks);
    canvas.line(px(e), bottom, px(e), bottom + 4, AXIS);
    canvas.text(px(e) - textWidth(String(e)) / 2, bottom + 8, String(e), TEXT);
  }
  canvas.line(left, top, left, bottom, AXIS);
  canvas.line(left, bottom, right, bottom, AXIS);
  for (const { points, color } of series) {
    const finite = points.filter(([, v]) => Number.isFinite(v));
    finite.forEach(([e, v], i) => {
      if (i > 0) canvas.line(px(finite[i - 1]![0]), py(finite[i - 1]![1]), px(e), py(v), color, 2);
      if (finite.length === 1) canvas.line(px(e) - 2, py(v), px(e) + 2, py(v), color, 2);
    });
  }
}

/** Renders the history: one panel per metric (loss first), plus a legend. */
export function plotHistory(epochs: EpochRecord[], metrics: string[], title: string): Uint8Array {
  const panelWidth = 420;
  const panelHeight = 300;
  const canvas = new Canvas(panelWidth * Math.max(1, metrics.length), panelHeight + 40);
  canvas.text(10, 8, title, TEXT);
  const legendX = canvas.width - 230;
  canvas.line(legendX, 14, legendX + 20, 14, TRAIN, 3);
  canvas.text(legendX + 26, 9, 'train', TEXT);
  canvas.line(legendX + 100, 14, legendX + 120, 14, VALIDATION, 3);
  canvas.text(legendX + 126, 9, 'val', TEXT);
  metrics.forEach((metric, i) => {
    panel(canvas, i * panelWidth, 30, panelWidth, panelHeight, `${metric} per epoch`, [
      { points: epochs.map((r) => [r.epoch, r.train[metric] ?? NaN]), color: TRAIN },
      { points: epochs.map((r) => [r.epoch, r.validation[metric] ?? NaN]), color: VALIDATION },
    ]);
  });
  return PNG.sync.write(canvas.png);
}
