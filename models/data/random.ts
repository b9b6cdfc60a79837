// Repeatable shuffles and splits over the seeded PRNG.
import { seededRandom } from '../../shared/random.ts';

export { seededRandom };

/** A shuffled permutation of 0..n-1. */
export function permutation(n: number, seed: number): number[] {
  const random = seededRandom(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Stratified split: each label's examples are shuffled and `testFraction` of them held out,
 * so the held-out set has the class balance of the whole. Returns shuffled index lists.
 */
export function stratifiedSplit(labels: ArrayLike<number>, testFraction: number, seed: number): { train: number[]; test: number[] } {
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byLabel.get(labels[i]!) ?? [];
    list.push(i);
    byLabel.set(labels[i]!, list);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (const [label, indices] of [...byLabel].sort((a, b) => a[0] - b[0])) {
    const order = permutation(indices.length, seed + label);
    const held = Math.round(indices.length * testFraction);
    order.forEach((k, i) => (i < held ? test : train).push(indices[k]!));
  }
  const shuffle = (list: number[], salt: number) => permutation(list.length, seed + salt).map((k) => list[k]!);
  return { train: shuffle(train, 1009), test: shuffle(test, 2003) };
}

/** Keeps the first `limit` items (already shuffled), or all of them. */
export const limitTo = <T>(items: T[], limit: number | undefined): T[] => (limit && limit < items.length ? items.slice(0, limit) : items);
