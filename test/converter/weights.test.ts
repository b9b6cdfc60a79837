// Reading a weights manifest: every dtype at odd byte offsets (a Node Buffer's slice() is a
// view, so a misaligned Int32Array / Uint16Array used to throw), duplicate weight names and
// non-finite values refused by name (for a uint8 / uint16 grid, checked value by value only when
// its ends are not both finite).
import { describe, expect, it } from 'vitest';
import { decodeWeights } from '../../shared/weights.ts';
import { ConversionError } from '../../shared/errors.ts';
import type { WeightGroup } from '../../shared/schemas/model-json.ts';

/** The bytes at offset 1 of a larger Node Buffer: an odd byteOffset, as a read file gives. */
function oddView(bytes: Uint8Array): Uint8Array {
  const backing = Buffer.alloc(bytes.byteLength + 3);
  backing.set(bytes, 1);
  return backing.subarray(1, 1 + bytes.byteLength);
}

const concat = (...parts: ArrayBufferView[]) => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

describe('decodeWeights', () => {
  it('decodes float32, int32, float16, uint16 and uint8 weights starting at odd offsets', () => {
    // The 2 uint8 bytes after offset 1 put every later weight at an odd offset (3, 11, 19, 23).
    const group: WeightGroup = {
      paths: ['group1-shard1of1.bin'],
      weights: [
        { name: 'u8', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
        { name: 'f32', shape: [2], dtype: 'float32' },
        { name: 'i32', shape: [2], dtype: 'int32' },
        { name: 'f16', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
        { name: 'u16', shape: [1], dtype: 'float32', quantization: { dtype: 'uint16', scale: 2, min: 0 } },
      ],
    };
    const bytes = concat(new Uint8Array([0, 2]), new Float32Array([1.5, -2]), new Int32Array([7, -9]), new Uint16Array([0x3c00, 0xc000]), new Uint16Array([21]));
    const byName = Object.fromEntries(decodeWeights([group], [oddView(bytes)]).map((w) => [w.name, Array.from(w.values)]));
    expect(byName).toEqual({ u8: [-1, 0], f32: [1.5, -2], i32: [7, -9], f16: [1, -2], u16: [42] });
  });

  it('refuses a weight listed twice, naming it', () => {
    const group: WeightGroup = {
      paths: ['a.bin'],
      weights: [
        { name: 'dense/kernel', shape: [1], dtype: 'float32' },
        { name: 'dense/kernel', shape: [1], dtype: 'float32' },
      ],
    };
    expect(() => decodeWeights([group], [concat(new Float32Array([1, 2]))])).toThrow(ConversionError);
    expect(() => decodeWeights([group], [concat(new Float32Array([1, 2]))])).toThrow(/lists weight dense\/kernel twice/);
  });

  it('refuses NaN and infinite weights, naming the weight and the element', () => {
    const group: WeightGroup = { paths: ['a.bin'], weights: [{ name: 'w', shape: [3], dtype: 'float32' }] };
    expect(() => decodeWeights([group], [concat(new Float32Array([1, Number.NaN, 3]))])).toThrow(/weight w holds NaN at element 1/);
    expect(() => decodeWeights([group], [concat(new Float32Array([1, 2, Number.POSITIVE_INFINITY]))])).toThrow(/weight w holds Infinity at element 2/);
  });

  it('refuses a uint8 / uint16 grid whose values overflow float32, and passes one whose ends are finite', () => {
    const grid = (dtype: 'uint8' | 'uint16', scale: number, min: number): WeightGroup => ({
      paths: ['a.bin'],
      weights: [{ name: 'q', shape: [2], dtype: 'float32', quantization: { dtype, scale, min } }],
    });
    expect(() => decodeWeights([grid('uint8', 2e36, 0)], [new Uint8Array([1, 255])])).toThrow(/weight q holds Infinity at element 1/);
    expect(() => decodeWeights([grid('uint16', Number.NaN, 0)], [concat(new Uint16Array([3, 4]))])).toThrow(/weight q holds NaN at element 0/);
    // The grid's top (min + 255 * scale) overflows, but no stored value reaches it.
    expect(Array.from(decodeWeights([grid('uint8', 2e36, 0)], [new Uint8Array([1, 100])])[0]!.values)).toEqual([Math.fround(2e36), Math.fround(2e38)]);
  });
});
