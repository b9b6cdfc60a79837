// Faster gradients for training on the pure backends, swapped into TF.js's gradient registry
// for the length of a training run (installFastGradients returns the function that restores
// TF.js's own). Both compute the same values as the stock gradients (test/train-backend.test.ts).
//
// Conv2D, filter: TF.js computes dL/dfilter with the Conv2DBackpropFilter kernel, which the wasm
// backend does not register at all and which the cpu backend's loop runs in ~9 s for one 64-image
// MNIST batch here. The same sum, dW[kh,kw,ci,co] = Σ x[n, oh·s+kh, ow·s+kw, ci] · dy[n,oh,ow,co],
// is one matrix product of the input's patches (im2col, from strided slices) with dy. Used for
// NHWC, undilated convolutions with 'same' / 'valid' padding (tfjs-layers' Conv2D); TF.js's own
// gradient otherwise. (A linear Conv2D with bias is fused to FusedConv2D while training, whose
// gradient does not go through the registry: models keep an activation inside Conv2D.)
//
// GatherV2 (Embedding), params: TF.js sums dy into the params' rows with UnsortedSegmentSum, which
// wasm does not register and whose cpu kernel loops once per row of the table (~15 s for one batch
// of a 5,000-word embedding). ScatterNd sums duplicate indices the same way in one pass.
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
      if (padH > 0 || padW > 0)
        padded = tf.pad(x, [
          [0, 0],
          [top, padH - top],
          [left, padW - left],
          [0, 0],
        ]);
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

/**
 * Replaces the gradient of one input of a kernel with `faster`, falling back to TF.js's own
 * where `faster` returns null; returns the function that registers TF.js's own again.
 */
function replaceInputGradient(kernel: string, input: string, faster: (dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => tf.Tensor | null): () => void {
  const original = tf.getGradient(kernel);
  if (!original) return () => {};
  tf.registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const grads = original.gradFunc(dy, saved, attrs);
      const fallback = grads[input]!;
      return { ...grads, [input]: () => faster(dy as tf.Tensor, saved, attrs) ?? fallback() };
    },
  });
  return () => tf.registerGradient(original);
}

/** dL/dparams of gather(params, indices) on axis 0 by ScatterNd; null for other gathers. */
export function gatherParamsGradient(paramsShape: number[], indices: tf.Tensor, dy: tf.Tensor, attrs: { axis?: number; batchDims?: number }): tf.Tensor | null {
  if ((attrs.axis ?? 0) !== 0 || (attrs.batchDims ?? 0) !== 0 || indices.dtype !== 'int32') return null;
  return tf.tidy(() => {
    const count = indices.size;
    const rows = tf.reshape(indices, [count, 1]);
    const values = tf.reshape(dy, [count, ...paramsShape.slice(1)]);
    return tf.scatterND(rows, values, paramsShape);
  });
}

/** Registers the faster Conv2D and GatherV2 gradients; returns a function that puts TF.js's own back. */
export function installFastGradients(): () => void {
  const restore = [
    replaceInputGradient(tf.Conv2D, 'filter', (dy, [x, filter], attrs) =>
      conv2dFilterGradient(x as tf.Tensor4D, dy as tf.Tensor4D, filter!.shape as [number, number, number, number], attrs as unknown as Conv2DAttrs),
    ),
    replaceInputGradient(tf.GatherV2, 'x', (dy, [params, indices], attrs) => gatherParamsGradient(params!.shape, indices!, dy, attrs as { axis?: number; batchDims?: number })),
  ];
  return () => restore.forEach((undo) => undo());
}
