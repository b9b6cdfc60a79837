// Image bytes for tests: an EXIF APP1 segment with an orientation tag spliced into a JPEG
// (as a phone camera writes it), and small PNG / JPEG encodings of grey pixel grids.
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';

/** The JPEG with an APP1 "Exif" segment right after SOI holding IFD0 tag 0x0112 = orientation (big-endian TIFF). */
export function withOrientation(jpegBytes: Uint8Array, orientation: number): Uint8Array {
  const tiff = [0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0, 0, 0, 0, 0];
  const payload = [...new TextEncoder().encode('Exif\0\0'), ...tiff];
  const length = payload.length + 2;
  const segment = [0xff, 0xe1, length >> 8, length & 0xff, ...payload];
  return Uint8Array.from([...jpegBytes.subarray(0, 2), ...segment, ...jpegBytes.subarray(2)]);
}

/** Grey values (rows of 0..255) as an 8-bit grey PNG. */
export function greyPng(rows: number[][]): Uint8Array {
  return encodePng({ width: rows[0]!.length, height: rows.length, channels: 1, depth: 8, data: Uint8Array.from(rows.flat()) });
}

/** Grey values (rows of 0..255) as a quality-95 JPEG (RGB). */
export function greyJpeg(rows: number[][]): Uint8Array {
  const data = Uint8Array.from(rows.flat().flatMap((v) => [v, v, v, 255]));
  return new Uint8Array(jpeg.encode({ width: rows[0]!.length, height: rows.length, data }, 95).data);
}

/** A size x size grey image, white (255) in the top-left quadrant and black elsewhere. */
export function topLeftWhite(size: number): number[][] {
  return Array.from({ length: size }, (_, y) => Array.from({ length: size }, (_, x) => (x < size / 2 && y < size / 2 ? 255 : 0)));
}
