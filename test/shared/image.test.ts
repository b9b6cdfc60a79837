// The image decoder (shared/image/): header figures before decoding, EXIF orientation, the
// formats and depths PNG and JPEG come in, bilinear resize to the spec, channels and scale.
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { EdgeflowError } from '../../shared/errors.ts';
import { decodeImage, type DecodedImage } from '../../shared/image/decode.ts';
import { readImageHeader } from '../../shared/image/header.ts';
import { imageToInput } from '../../shared/image/to-input.ts';
import { withOrientation } from '../helpers/images.ts';

const spec = (height: number, width: number, channels: 'rgb' | 'grayscale' = 'grayscale', scale = 1, offset = 0) => ({ height, width, channels, scale, offset });

function errorOf(run: () => unknown): EdgeflowError {
  try {
    run();
  } catch (error) {
    if (error instanceof EdgeflowError) return error;
    throw error;
  }
  throw new Error('no error thrown');
}

/** A stored 3x2 grey image 0..5 row by row, read back upright at its own size (no interpolation). */
function upright(orientation: number): number[][] {
  const image: DecodedImage = { format: 'png', width: 3, height: 2, orientation, channels: 1, data: Uint8Array.from([0, 1, 2, 3, 4, 5]) };
  const [h, w] = orientation >= 5 ? [3, 2] : [2, 3];
  const out = new Float32Array(h * w);
  imageToInput(image, spec(h, w), out);
  return Array.from({ length: h }, (_, y) => Array.from(out.subarray(y * w, (y + 1) * w)));
}

describe('image orientation and resize', () => {
  it('turns each EXIF orientation upright', () => {
    // Stored:  0 1 2 / 3 4 5. Orientation n says how to get upright from stored (EXIF 2.3, tag 0x0112).
    expect(upright(1)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(upright(2)).toEqual([
      [2, 1, 0],
      [5, 4, 3],
    ]);
    expect(upright(3)).toEqual([
      [5, 4, 3],
      [2, 1, 0],
    ]);
    expect(upright(4)).toEqual([
      [3, 4, 5],
      [0, 1, 2],
    ]);
    expect(upright(5)).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    // 6: rotate 90° clockwise.
    expect(upright(6)).toEqual([
      [3, 0],
      [4, 1],
      [5, 2],
    ]);
    expect(upright(7)).toEqual([
      [5, 2],
      [4, 1],
      [3, 0],
    ]);
    // 8: rotate 90° counter-clockwise.
    expect(upright(8)).toEqual([
      [2, 5],
      [1, 4],
      [0, 3],
    ]);
  });

  it('resizes bilinearly with half-pixel centres, converts RGB to grey (601 luma) and applies scale and offset', () => {
    const image: DecodedImage = { format: 'png', width: 2, height: 1, orientation: 1, channels: 1, data: Uint8Array.from([0, 200]) };
    const out = new Float32Array(4);
    imageToInput(image, spec(1, 4), out);
    // x=0..3 sample source 0.25·(2x+1)-0.5 → -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
    expect(Array.from(out)).toEqual([0, 50, 150, 200]);
    const rgb: DecodedImage = { format: 'png', width: 1, height: 1, orientation: 1, channels: 4, data: Uint8Array.from([255, 0, 0, 7]) };
    const grey = new Float32Array(1);
    imageToInput(rgb, spec(1, 1, 'grayscale', 2, -1), grey);
    expect(grey[0]).toBeCloseTo(0.299 * 255 * 2 - 1, 4);
    const colour = new Float32Array(3);
    imageToInput(rgb, spec(1, 1, 'rgb', 1 / 255, 0), colour);
    expect(Array.from(colour)).toEqual([1, 0, 0]);
    const fromGrey = new Float32Array(3);
    imageToInput({ ...image, width: 1, data: Uint8Array.from([9]) }, spec(1, 1, 'rgb'), fromGrey);
    expect(Array.from(fromGrey)).toEqual([9, 9, 9]);
  });
});

describe('decodeImage', () => {
  it('decodes 8-bit RGB, 16-bit grey + alpha, 1-bit grey and palette PNGs to 8-bit values', () => {
    const rgb = decodeImage(encodePng({ width: 2, height: 1, channels: 3, depth: 8, data: Uint8Array.from([1, 2, 3, 250, 251, 252]) }), 'body', 1e6);
    expect([rgb.channels, Array.from(rgb.data)]).toEqual([3, [1, 2, 3, 250, 251, 252]]);
    const deep = decodeImage(encodePng({ width: 1, height: 1, channels: 2, depth: 16, data: Uint16Array.from([0x1234, 0xffff]) }), 'body', 1e6);
    expect([deep.channels, Array.from(deep.data)]).toEqual([2, [0x12, 0xff]]);
    const bits = decodeImage(encodePng({ width: 3, height: 1, channels: 1, depth: 1, data: Uint8Array.from([0b10100000]) }), 'body', 1e6);
    expect([bits.channels, Array.from(bits.data)]).toEqual([1, [255, 0, 255]]);
    const palette = decodeImage(
      encodePng({
        width: 2,
        height: 1,
        channels: 1,
        depth: 8,
        data: Uint8Array.from([1, 0]),
        palette: [
          [9, 8, 7],
          [1, 2, 3],
        ],
      }),
      'body',
      1e6,
    );
    expect([palette.channels, Array.from(palette.data)]).toEqual([3, [1, 2, 3, 9, 8, 7]]);
  });

  it('decodes a JPEG without Node Buffers and reads its EXIF orientation from the header', () => {
    const data = new Uint8Array(16 * 8 * 4).fill(128);
    const bytes = withOrientation(new Uint8Array(jpeg.encode({ width: 16, height: 8, data }, 95).data), 6);
    expect(readImageHeader(bytes, 'body')).toEqual({ format: 'jpeg', width: 16, height: 8, orientation: 6 });
    const image = decodeImage(bytes, 'body', 1e6);
    expect([image.width, image.height, image.channels, image.orientation]).toEqual([16, 8, 3, 6]);
    expect(image.data).toBeInstanceOf(Uint8Array);
    expect(Math.abs(image.data[0]! - 128)).toBeLessThanOrEqual(2);
  });

  it('refuses an image past the pixel budget from its header alone, before decoding', () => {
    // A PNG signature and IHDR claiming 100000 x 100000, with nothing decodable after them.
    const header = encodePng({ width: 1, height: 1, channels: 1, depth: 8, data: Uint8Array.from([0]) }).slice(0, 33);
    new DataView(header.buffer).setUint32(16, 100_000);
    new DataView(header.buffer).setUint32(20, 100_000);
    const error = errorOf(() => decodeImage(header, 'examples[0].image.b64', 16_000_000));
    expect([error.code, error.message]).toEqual(['too_large', 'examples[0].image.b64: a 100000x100000 image (10000000000 pixels) exceeds the limit of 16000000 pixels: send it downscaled']);
  });

  it('names other formats (unsupported_media_type) and corrupt images (bad_request)', () => {
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00');
    expect([errorOf(() => decodeImage(gif, 'body', 1e6)).code, errorOf(() => decodeImage(gif, 'body', 1e6)).message]).toEqual([
      'unsupported_media_type',
      'body: a GIF image: edgeflow decodes JPEG and PNG images',
    ]);
    const text = errorOf(() => decodeImage(new TextEncoder().encode('hello'), 'body', 1e6));
    expect([text.code, text.message]).toEqual(['bad_request', 'body: not a JPEG or PNG image (5 bytes starting 68 65 6c 6c)']);
    const jpegBytes = new Uint8Array(jpeg.encode({ width: 8, height: 8, data: new Uint8Array(256).fill(50) }, 90).data);
    const truncated = errorOf(() => decodeImage(jpegBytes.subarray(0, 40), 'body', 1e6));
    expect([truncated.code, truncated.message]).toEqual(['bad_request', 'body: corrupt JPEG (no frame header with its size; truncated?)']);
    const png = encodePng({ width: 4, height: 4, channels: 3, depth: 8, data: new Uint8Array(48).fill(3) });
    const broken = errorOf(() => decodeImage(png.subarray(0, png.byteLength - 20), 'body', 1e6));
    expect(broken.code).toBe('bad_request');
    expect(broken.message).toMatch(/^body: corrupt PNG \(.+\)$/);
  });
});
