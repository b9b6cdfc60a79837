// Which BatchNormalization folds to make, given the dtype each kernel will be stored at.
// Folding multiplies the kernel's output channel c by s[c]. At float32 that is exact; at float16
// the rounding is relative, so about as small as before; but uint8 / uint16 grids are one
// affine scale per tensor, and channels scaled very differently share it badly (MobileNet's
// depthwise kernels: the folded model drifted 0.115 instead of 0.0 at uint8). So each fold is
// judged by the kernel's storage error as the layer after the BN sees it: before folding, the
// error of the stored kernel times s[c]; after, the error of the stored folded kernel. A fold
// that more than doubles it is not made, unless it stays within float16's own relative rounding
// (2^-11 of each value: overflow or subnormal values at float16 still count against it).
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
    return errorAfter <= 2 * errorBefore + 2 ** -22 * energy;
  };
}
