// Reads what an image's header says before anything is decoded: its format (from the magic
// bytes), width and height (PNG IHDR, JPEG SOFn) and the EXIF orientation of a JPEG (the APP1
// segment's TIFF IFD0 tag 0x0112). Callers check the pixel budget on these figures first.
import { badRequest, EdgeflowError } from '../errors.ts';

export type ImageFormat = 'jpeg' | 'png';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1: as stored). */
  orientation: number;
}

const OTHER_FORMATS: [string, (b: Uint8Array) => boolean][] = [
  ['GIF', (b) => b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x38],
  ['WebP', (b) => b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50],
  ['BMP', (b) => b[0] === 0x42 && b[1] === 0x4d],
  ['TIFF', (b) => (b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a) || (b[0] === 0x4d && b[1] === 0x4d && b[3] === 0x2a)],
  ['HEIF/AVIF', (b) => b[4] === 0x66 && b[5] === 0x74 && b[6] === 0x79 && b[7] === 0x70],
];

export const unsupportedImage = (what: string) => new EdgeflowError('unsupported_media_type', `${what}: edgeflow decodes JPEG and PNG images`);

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The image's format from its first bytes: 415 for a known other format, 400 for anything else. */
export function sniffFormat(bytes: Uint8Array, field: string): ImageFormat {
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  const other = OTHER_FORMATS.find(([, test]) => test(bytes));
  if (other) throw unsupportedImage(`${field}: a ${other[0]} image`);
  throw badRequest(`${field}: not a JPEG or PNG image (${bytes.byteLength} bytes starting ${Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ') || 'with nothing'})`);
}

function pngHeader(bytes: Uint8Array, field: string): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ihdr = bytes.byteLength >= 24 && String.fromCharCode(...bytes.subarray(12, 16)) === 'IHDR';
  if (!ihdr) throw badRequest(`${field}: corrupt PNG (no IHDR chunk after the signature)`);
  return { format: 'png', width: view.getUint32(16), height: view.getUint32(20), orientation: 1 };
}

/** EXIF orientation from an APP1 segment's payload (starting at "Exif\0\0"); 1 when absent or malformed. */
function exifOrientation(segment: Uint8Array): number {
  if (segment.byteLength < 14 || String.fromCharCode(...segment.subarray(0, 4)) !== 'Exif') return 1;
  const tiff = new DataView(segment.buffer, segment.byteOffset + 6, segment.byteLength - 6);
  const little = tiff.getUint16(0) === 0x4949;
  if (!little && tiff.getUint16(0) !== 0x4d4d) return 1;
  const ifd = tiff.getUint32(4, little);
  if (ifd + 2 > tiff.byteLength) return 1;
  const entries = tiff.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.byteLength) return 1;
    if (tiff.getUint16(entry, little) === 0x0112) {
      const value = tiff.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

function jpegHeader(bytes: Uint8Array, field: string): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let orientation = 1;
  let offset = 2;
  while (offset + 4 <= bytes.byteLength) {
    if (bytes[offset] !== 0xff) throw badRequest(`${field}: corrupt JPEG (no marker at byte ${offset})`);
    const marker = bytes[offset + 1]!;
    if (marker === 0xff) {
      offset++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      offset += 2;
      continue;
    }
    const length = view.getUint16(offset + 2);
    if (length < 2 || offset + 2 + length > bytes.byteLength) break;
    const segment = bytes.subarray(offset + 4, offset + 2 + length);
    if (marker === 0xe1 && orientation === 1) orientation = exifOrientation(segment);
    // SOF0..SOF15 but DHT (c4), JPG (c8) and DAC (cc): precision, height, width.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (segment.byteLength < 5) break;
      const height = view.getUint16(offset + 5);
      const width = view.getUint16(offset + 7);
      if (width === 0 || height === 0) throw badRequest(`${field}: corrupt JPEG (frame of ${width}x${height} pixels)`);
      return { format: 'jpeg', width, height, orientation };
    }
    if (marker === 0xda || marker === 0xd9) break; // scan or end before any frame header
    offset += 2 + length;
  }
  throw badRequest(`${field}: corrupt JPEG (no frame header with its size; truncated?)`);
}

/** Format, size and orientation from the header alone. */
export function readImageHeader(bytes: Uint8Array, field: string): ImageHeader {
  const format = sniffFormat(bytes, field);
  const header = format === 'png' ? pngHeader(bytes, field) : jpegHeader(bytes, field);
  if (header.width === 0 || header.height === 0) throw badRequest(`${field}: corrupt ${format.toUpperCase()} (${header.width}x${header.height} pixels)`);
  return header;
}
