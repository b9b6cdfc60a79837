// Which BatchNormalization folds to make, given the dtype each kernel will be stored at.
// Folding multiplies the kernel's output channel c by s[c]. At float32 that is exact, so it is
// always made. At float16 and uint16 it is never made: their storage error is so small that the
// folded and unfolded models' output noise differ by less than a few calibration samples can
// rank (MobileNetV2 at float16: folding measured 2.7 dB better on 16 calibration views and 6 dB
// worse on held-out photos), and the unfolded weights are tensorflowjs_converter's own values;
// a layers model is served compiled, with BN folded in float32 at load, so storage folding buys
// no speed there. uint8 grids are one affine scale per tensor, and channels scaled very
// differently share it badly (MobileNet's depthwise kernels: the folded model drifted 0.115
// instead of 0.0), so a uint8 fold is judged by the storage error it induces as the layer after
// the BN sees it: before folding, the error of the stored kernel times s[c]; after, the error of
// the stored folded kernel; made only where it does not grow. Conversion then also measures the
// model's output error folded and unfolded (converter/convert.ts). Without real calibration data
// no uint8 fold is made: the conversion keeps to tensorflowjs_converter's kernels and ranges.
import { type EncodeOptions, storedValues } from '../encode.ts';
import type { StorageDtype } from '../../shared/options/quantize-spec.ts';
import type { FoldCandidate } from './fold-batchnorm.ts';

export function foldKeepsPrecision(dtypeOf: (weightName: string) => StorageDtype, ranges: Pick<EncodeOptions, 'clipOutliers' | 'holdZero'>): (candidate: FoldCandidate) => boolean {
  return ({ kernel, folded, scale }) => {
    const dtype = dtypeOf(kernel.name);
    if (dtype === 'float32') return true;
    // The anchor's ranges (no real calibration data) come with the anchor's unfolded kernels.
    if (dtype === 'float16' || dtype === 'uint16' || ranges.holdZero) return false;
    const original = kernel.values as Float32Array;
    const target = folded.values as Float32Array;
    const before = storedValues(kernel, dtype, ranges);
    const after = storedValues(folded, dtype, ranges);
    const channels = scale.length;
    let errorBefore = 0;
    let errorAfter = 0;
    for (let i = 0; i < original.length; i++) {
      errorBefore += ((before[i]! - original[i]!) * scale[i % channels]!) ** 2;
      errorAfter += (after[i]! - target[i]!) ** 2;
    }
    return errorAfter <= errorBefore;
  };
}
