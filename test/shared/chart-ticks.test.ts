// The training curves' axis scales (shared/chart-ticks.ts), used by history.png and the console:
// loss on a log scale with decade ticks (1-2-5 within few decades), metrics linear at 1-2-5 steps.
import { describe, expect, it } from 'vitest';
import { metricScale, niceTicks, tickLabel } from '../../shared/chart-ticks.ts';

describe('metricScale', () => {
  it('a loss over three decades: log scale, a tick per decade, the range covering them', () => {
    const scale = metricScale('loss', [2.3, 0.4, 0.05, 0.004]);
    expect(scale.log).toBe(true);
    expect(scale.ticks).toEqual([0.001, 0.01, 0.1, 1, 10]);
    expect([scale.lo, scale.hi]).toEqual([-3, 1]);
    expect(scale.f(0.01)).toBe(-2);
  });

  it('a loss within a decade gets 1-2-5 ticks; a loss with a zero stays linear', () => {
    expect(metricScale('val loss', [0.9, 0.3]).ticks).toEqual([0.1, 0.2, 0.5, 1]);
    expect(metricScale('loss', [0.5, 0]).log).toBe(false);
  });

  it('other metrics are linear at 1-2-5 steps; a flat series still gets a range', () => {
    const accuracy = metricScale('accuracy', [0.61, 0.83, 0.97]);
    expect(accuracy.log).toBe(false);
    expect(accuracy.ticks).toEqual([0.6, 0.7, 0.8, 0.9, 1]);
    expect(metricScale('mae', [3, 3]).ticks).toEqual(niceTicks(2.5, 3.5));
  });

  it('tick labels are short', () => {
    expect([0, 0.001, 0.25, 1, 12.5, 2000].map(tickLabel)).toEqual(['0', '1.0e-3', '0.25', '1', '12.5', '2.0e3']);
  });
});
