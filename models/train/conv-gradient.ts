// A faster Conv2D filter gradient for training on the pure backends.
// TF.js computes dL/dfilter with the Conv2DBackpropFilter kernel: the wasm backend does not
// register it at all, and the cpu backend's loop takes ~9 s for one 64-image MNIST batch here.
// The same sum, dW[kh,kw,ci,co] = Σ x[n, oh·s+kh, ow·s+kw, ci] · dy[n,oh,ow,co], is one matrix
// product of the input's patches (im2col, built from strided slices) with dy, which both backends
// run fast. installFastConvGradient swaps it into the gradient registry for NHWC, undilated
// convolutions with 'same' / 'valid' padding (what tfjs-layers' Conv2D uses) and keeps TF.js's own
// gradient for everything else; the returned function restores the original registration.
import * as tf from '@tensorflow/tfjs-core';

interface Conv2DAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | unknown;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
}

const pair = (v: number | [number, number] | undefined): [number, number] => (v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v);

/** dL/dfilter by im2col + matMul; null when the convolution is not one this handles. */
export function conv2dFilterGradient(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], attrs: Conv2DAttrs): tf.Tensor4D | null {
  const [strideH, strideW] = pair(attrs.strides);
  const [dilationH, dilationW] = pair(attrs.dilations);
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || dilationH !== 1 || dilationW !== 1) return null;
  if (attrs.pad !== 'same' && attrs.pad !== 'valid') return null;
  const [kernelH, kernelW, inChannels, outChannels] = filterShape;
  const [batch, height, width] = x.shape;
  const [, outH, outW] = dy.shape;
  return tf.tidy(() => {
    let padded: tf.Tensor4D = x;
    if (attrs.pad === 'same') {
      const padH = Math.max((outH - 1) * strideH + kernelH - height, 0);
      const padW = Math.max((outW - 1) * strideW + kernelW - width, 0);
      const top = Math.floor(padH / 2);
      const left = Math.floor(padW / 2);
      if (padH > 0 || padW > 0) padded = tf.pad(x, [[0, 0], [top, padH - top], [left, padW - left], [0, 0]]);
    }
    const patches: tf.Tensor4D[] = [];
    for (let kh = 0; kh < kernelH; kh++) {
      for (let kw = 0; kw < kernelW; kw++) {
        const end = [batch, kh + (outH - 1) * strideH + 1, kw + (outW - 1) * strideW + 1, inChannels];
        patches.push(tf.stridedSlice(padded, [0, kh, kw, 0], end, [1, strideH, strideW, 1]) as tf.Tensor4D);
      }
    }
    // Columns ordered (kh, kw, ci), matching the filter's layout.
    const columns = tf.reshape(patches.length === 1 ? patches[0]! : tf.concat(patches, 3), [batch * outH * outW, kernelH * kernelW * inChannels]);
    const grads = tf.reshape(dy, [batch * outH * outW, outChannels]);
    return tf.reshape(tf.matMul(columns, grads, true, false), filterShape);
  }) as tf.Tensor4D;
}

/** Registers the faster Conv2D gradient; returns a function that puts TF.js's own back. */
export function installFastConvGradient(): () => void {
  const original = tf.getGradient(tf.Conv2D);
  if (!original) return () => {};
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const grads = original.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const fallback = grads.filter!;
      return {
        ...grads,
        filter: () => conv2dFilterGradient(x, dy as tf.Tensor4D, filter.shape, attrs as unknown as Conv2DAttrs) ?? fallback(),
      };
    },
  });
  return () => tf.registerGradient(original);
}
