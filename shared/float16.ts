// IEEE 754 half-precision conversion, bit-exact with TF.js's float16 decoder.

/** Round-to-nearest-even float32 bits → float16 bits; overflow saturates to ±65504. */
export function float32BitsToFloat16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | (mantissa ? 0x7e00 : 0x7c00);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7bff;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  if ((half & 0x7fff) >= 0x7c00) return sign | 0x7bff;
  return sign | half;
}

export function float32ToFloat16(source: Float32Array, target: Uint16Array): void {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  for (let i = 0; i < bits.length; i++) target[i] = float32BitsToFloat16(bits[i]!);
}

/** Converts into target and returns the largest absolute rounding error. */
export function float32ToFloat16WithError(source: Float32Array, target: Uint16Array): number {
  const bits = new Uint32Array(source.buffer, source.byteOffset, source.length);
  const table = halfToFloatTable();
  let maxError = 0;
  for (let i = 0; i < bits.length; i++) {
    const half = float32BitsToFloat16(bits[i]!);
    target[i] = half;
    const error = Math.abs(table[half]! - source[i]!);
    if (error > maxError) maxError = error;
  }
  return maxError;
}

let halfTable: Float32Array | undefined;

/** Built on first use so loading this module costs nothing at start-up. */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 0x1f) table[h] = mantissa ? NaN : sign * Infinity;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return (halfTable = table);
}

export function float16ToFloat32(source: Uint16Array, target: Float32Array): void {
  const table = halfToFloatTable();
  for (let i = 0; i < source.length; i++) target[i] = table[source[i]!]!;
}
