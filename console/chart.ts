// An SVG line chart of one metric per epoch (training and validation), for the console's
// training panel: axis scale and ticks from shared/chart-ticks.ts (log loss), both axes titled.
import { metricScale, tickLabel } from '../shared/chart-ticks.ts';

const NS = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 180;
const LEFT = 52;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 36;

export interface Series {
  name: string;
  className: string;
  points: [number, number][];
}

/** Whole epochs at a 1-2-5 step, at most 7 of them. */
function epochTicks(first: number, last: number): number[] {
  let step = 1;
  for (let decade = 1; (last - first) / step > 6; decade *= 10) step = [1, 2, 5].map((m) => m * decade).find((s) => (last - first) / s <= 6) ?? 10 * decade;
  const ticks: number[] = [];
  for (let e = Math.ceil(first / step) * step; e <= last; e += step) ticks.push(e);
  return ticks;
}

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A chart of `metric` per epoch; null when no series has a finite value. */
export function metricChart(metric: string, series: Series[]): SVGElement | null {
  const finite = series.map((s) => ({ ...s, points: s.points.filter(([, v]) => Number.isFinite(v)) })).filter((s) => s.points.length > 0);
  const values = finite.flatMap((s) => s.points.map(([, v]) => v));
  if (values.length === 0) return null;
  const { log, f, lo, hi, ticks } = metricScale(metric, values);
  const epochs = finite.flatMap((s) => s.points.map(([e]) => e));
  const [eMin, eMax] = [Math.min(...epochs), Math.max(Math.min(...epochs) + 1, ...epochs)];
  const px = (e: number) => LEFT + ((e - eMin) / (eMax - eMin)) * (W - LEFT - RIGHT);
  const py = (v: number) => H - BOTTOM - ((f(v) - lo) / (hi - lo)) * (H - TOP - BOTTOM);
  const title = `${metric}${log ? ' (log scale)' : ''}`;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': `${title} per epoch`, class: 'chart' });
  for (const v of ticks) {
    chart.append(svg('line', { x1: LEFT, x2: W - RIGHT, y1: py(v), y2: py(v), class: 'grid' }));
    chart.append(svg('text', { x: LEFT - 4, y: py(v) + 3, 'text-anchor': 'end', class: 'tick' }, tickLabel(v)));
  }
  for (const e of epochTicks(eMin, eMax)) {
    chart.append(svg('line', { x1: px(e), x2: px(e), y1: H - BOTTOM, y2: H - BOTTOM + 4, class: 'axis' }));
    chart.append(svg('text', { x: px(e), y: H - BOTTOM + 14, 'text-anchor': 'middle', class: 'tick' }, String(e)));
  }
  chart.append(svg('path', { d: `M${LEFT},${TOP}V${H - BOTTOM}H${W - RIGHT}`, class: 'axis', fill: 'none' }));
  chart.append(svg('text', { x: (LEFT + W - RIGHT) / 2, y: H - 4, 'text-anchor': 'middle', class: 'axis-title' }, 'epoch'));
  chart.append(svg('text', { x: 12, y: (TOP + H - BOTTOM) / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${(TOP + H - BOTTOM) / 2})`, class: 'axis-title' }, title));
  for (const s of finite) {
    const d = s.points.map(([e, v], i) => `${i ? 'L' : 'M'}${px(e).toFixed(1)},${py(v).toFixed(1)}`).join('');
    const line = svg('path', { d, class: `series ${s.className}`, fill: 'none' });
    line.append(svg('title', {}, s.name));
    chart.append(line);
  }
  return chart;
}
