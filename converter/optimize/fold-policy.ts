// Which BatchNormalization folds to make, given the dtype each kernel will be stored at.
// Folding multiplies the kernel's output channel c by s[c]. At float32 that is exact; at float16
// the rounding is relative, so about as small as before, unless scaled values fall into
// float16's subnormals or overflow; uint8 / uint16 grids are one affine scale per tensor, and
// channels scaled very differently share it badly (MobileNet's depthwise kernels: the folded
// model drifted 0.115 instead of 0.0 at uint8). So each fold is judged by the storage error it
// induces as the layer after the BN sees it: before folding, the error of the stored kernel
// times s[c]; after, the error of the stored folded kernel. A fold is made only where that error
// does not grow, or, at float16, stays within half of float16's own mean squared rounding of the
// folded values (2^-23 of their energy: subnormal or overflowing values exceed it). Conversion
// then also measures the model's output error folded and unfolded (converter/convert.ts).
import { storedValues } from '../encode.ts';
import type { StorageDtype } from '../../shared/options/quantize-spec.ts';
import type { FoldCandidate } from './fold-batchnorm.ts';

export function foldKeepsPrecision(dtypeOf: (weightName: string) => StorageDtype, clipOutliers: boolean): (candidate: FoldCandidate) => boolean {
  return ({ kernel, folded, scale }) => {
    const dtype = dtypeOf(kernel.name);
    if (dtype === 'float32') return true;
    const original = kernel.values as Float32Array;
    const target = folded.values as Float32Array;
    const before = storedValues(kernel, dtype, { clipOutliers });
    const after = storedValues(folded, dtype, { clipOutliers });
    const channels = scale.length;
    let errorBefore = 0;
    let errorAfter = 0;
    let energy = 0;
    for (let i = 0; i < original.length; i++) {
      errorBefore += ((before[i]! - original[i]!) * scale[i % channels]!) ** 2;
      errorAfter += (after[i]! - target[i]!) ** 2;
      energy += target[i]! ** 2;
    }
    return errorAfter <= (dtype === 'float16' ? Math.max(errorBefore, 2 ** -23 * energy) : errorBefore);
  };
}
