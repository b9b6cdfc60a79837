// The benchmarks' latency figures: the nearest-rank quantile of a list of numbers.

/** The nearest-rank q-quantile (0 ≤ q ≤ 1) of values in any order; NaN when there are none. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
