// Turns off TF.js's console notes for a CLI run, above all the cpu backend's "Hi, looks like you
// are running TensorFlow.js in Node.js ... install our node backend" banner on its first tensor:
// tfjs-core prints its warnings unless the PROD (or IS_TEST) flag is set, and enableProdMode()
// is the documented way to set it. Apart from backend.ts so that `edgeflow serve` does not load
// the converter and the cpu backend to set a flag.
import * as tf from '@tensorflow/tfjs-core';

export function quietTensorFlow(): void {
  tf.enableProdMode();
}
