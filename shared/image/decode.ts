// Decodes a JPEG or PNG into 8-bit pixels with pure-JS decoders (jpeg-js, fast-png: no Node
// APIs, so Workers run it too), after the header's size is checked against a pixel budget.
import decodeJpeg from 'jpeg-js/lib/decoder.js';
import { convertIndexedToRgb, decode as decodePng, type DecodedPng } from 'fast-png';
import { badRequest, tooLarge } from '../errors.ts';
import { readImageHeader, type ImageHeader } from './header.ts';

export interface DecodedImage extends ImageHeader {
  /** 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) 8-bit values per pixel, row by row. */
  channels: number;
  data: Uint8Array;
}

/** PNG samples as 8-bit values: 16-bit samples keep their high byte, 1/2/4-bit grey is unpacked and stretched. */
function pngPixels(png: DecodedPng): { channels: number; data: Uint8Array } {
  if (png.palette) {
    const data = convertIndexedToRgb(png);
    return { channels: data.length / (png.width * png.height), data };
  }
  const { data, depth, channels, width, height } = png;
  if (depth === 16) return { channels, data: Uint8Array.from(data as Uint16Array, (v) => v >> 8) };
  if (depth === 8) return { channels, data: data instanceof Uint8Array ? data : Uint8Array.from(data) };
  // 1, 2 or 4 bits: grey only (PNG allows no other colour type at these depths but palette).
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const max = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const value = (data[y * rowBytes + (bit >> 3)]! >> (8 - depth - (bit & 7))) & max;
      out[y * width + x] = Math.round((value * 255) / max);
    }
  }
  return { channels: 1, data: out };
}

/**
 * Decodes `bytes` (named `field` in messages). 415 for another image format, 413 past
 * maxPixels (read from the header, before decoding), 400 naming the problem for a corrupt image.
 */
export function decodeImage(bytes: Uint8Array, field: string, maxPixels: number): DecodedImage {
  const header = readImageHeader(bytes, field);
  const pixels = header.width * header.height;
  if (pixels > maxPixels) throw tooLarge(`${field}: a ${header.width}x${header.height} image (${pixels} pixels) exceeds the limit of ${maxPixels} pixels: send it downscaled`);
  try {
    if (header.format === 'jpeg') {
      const image = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: true, maxResolutionInMP: Math.ceil(maxPixels / 1e6) });
      if (image.width !== header.width || image.height !== header.height) throw new Error(`decoded ${image.width}x${image.height}, header says ${header.width}x${header.height}`);
      return { ...header, channels: 3, data: image.data };
    }
    const png = decodePng(bytes);
    return { ...header, ...pngPixels(png) };
  } catch (error) {
    throw badRequest(`${field}: corrupt ${header.format === 'jpeg' ? 'JPEG' : 'PNG'} (${(error as Error).message})`);
  }
}
