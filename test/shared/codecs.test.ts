// Tensor codecs of the HTTP APIs (shared/codecs.ts): base64, nested and flat values,
// datatype ranges, and errors naming the field.
import { describe, expect, it } from 'vitest';
import { checkShape, CodecError, decodeBase64, decodeRawBytes, decodeValues, encodeBase64, nest, nestedShape } from '../../shared/codecs.ts';

/** The message of the CodecError fn throws (and a failed test when it throws none). */
function fail(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CodecError);
    return (error as Error).message;
  }
  throw new Error('no error');
}

describe('base64', () => {
  it('round-trips every length, with or without padding and whitespace', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 151 + 7) & 255);
      const text = encodeBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(decodeBase64(text, 'f')).toEqual(bytes);
      expect(decodeBase64(text.replace(/=+$/, ''), 'f')).toEqual(bytes);
      expect(decodeBase64(` ${text.slice(0, 3)}\n${text.slice(3)}\n`, 'f')).toEqual(bytes);
    }
  });

  it('refuses bad input naming the field', () => {
    expect(() => decodeBase64('AB$C', 'instances[0].b64')).toThrow('instances[0].b64: b64 is not valid base64 (character "$" at 2)');
    expect(() => decodeBase64('ABCDE', 'x')).toThrow(/truncated/);
  });

  it('reads raw little-endian tensors and checks their size', () => {
    const values = new Float32Array([1.5, -2, 3]);
    expect(decodeRawBytes(encodeBase64(new Uint8Array(values.buffer)), 'float32', 3, 'f')).toEqual(values);
    expect(() => decodeRawBytes(encodeBase64(new Uint8Array(values.buffer)), 'float32', 4, 'f')).toThrow('f: b64 holds 12 bytes; the input needs 4 float32 values (16 bytes, little-endian)');
  });
});

describe('values', () => {
  it('reads nested and flat layouts into the model dtype', () => {
    expect(
      nestedShape([
        [[1], [2]],
        [[3], [4]],
      ]),
    ).toEqual([2, 2, 1]);
    expect(
      decodeValues(
        [
          [1, 2],
          [3, 4],
        ],
        [2, 2],
        'data',
        { dtype: 'float32' },
      ),
    ).toEqual(new Float32Array([1, 2, 3, 4]));
    expect(decodeValues([1, 2, 3, 4], [2, 2], 'data', { dtype: 'int32', datatype: 'INT64', allowFlat: true })).toEqual(new Int32Array([1, 2, 3, 4]));
    expect(decodeValues([true, false], [2], 'data', { dtype: 'float32', datatype: 'BOOL' })).toEqual(new Float32Array([1, 0]));
    expect(decodeValues([['a', { b64: 'AAE=' }]], [1, 2], 'data', { dtype: 'string' })).toEqual([new TextEncoder().encode('a'), new Uint8Array([0, 1])]);
  });

  it('names the element that is wrong', () => {
    expect(fail(() => decodeValues([[1, 2], [3]], [2, 2], 'inputs', { dtype: 'float32' }))).toMatch(/^inputs\[1\]: expected 2 elements/);
    expect(fail(() => decodeValues([1, -1], [2], 'd', { dtype: 'float32', datatype: 'UINT16' }))).toBe('d[1]: -1 is out of range for UINT16 [0, 65535]');
    expect(fail(() => decodeValues([1, 2 ** 31], [2], 'd', { dtype: 'int32', datatype: 'INT64' }))).toBe(`d[1]: ${2 ** 31} does not fit the model's int32 input`);
    expect(fail(() => decodeValues([1, null], [2], 'd', { dtype: 'float32' }))).toBe('d[1]: expected a number for float32, got null');
    expect(fail(() => decodeValues([1, 2], [3], 'd', { dtype: 'float32', maxElements: 2 }))).toBe('d: 3 elements exceed the limit of 2 per request');
    expect(fail(() => checkShape([1, 3], [-1, 4], 'x'))).toBe("x: shape [1, 3] does not match the model's [any, 4]");
  });

  it('refuses numbers the target float type cannot hold instead of answering with Infinity / null', () => {
    // TF Serving JSON into a float32 input: 1e39 is past float32's largest finite value.
    expect(fail(() => decodeValues([[0.5, 1e39]], [1, 2], 'instances', { dtype: 'float32' }))).toBe('instances[0][1]: 1e+39 is out of range for float32 (largest magnitude 3.4028234663852886e+38)');
    // v2: JSON.parse turns 1e309 into Infinity; FP16 holds at most 65504.
    expect(fail(() => decodeValues(JSON.parse('[1, 1e309]'), [2], 'x', { dtype: 'float32', datatype: 'FP32' }))).toBe('x[1]: Infinity is not a finite number');
    expect(fail(() => decodeValues([1, -1e6], [2], 'x', { dtype: 'float32', datatype: 'FP16' }))).toBe('x[1]: -1000000 is out of range for FP16 (largest magnitude 65504)');
    expect(Array.from(decodeValues([1, -65504], [2], 'x', { dtype: 'float32', datatype: 'FP16' }) as Float32Array)).toEqual([1, -65504]);
    expect(Array.from(decodeValues([[3.4e38]], [1, 1], 'x', { dtype: 'float32' }) as Float32Array)[0]).toBeCloseTo(3.4e38, -33);
  });

  it('nests flat outputs back to their shape', () => {
    expect(nest([1, 2, 3, 4, 5, 6], [2, 3])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(nest([7], [])).toBe(7);
  });
});
