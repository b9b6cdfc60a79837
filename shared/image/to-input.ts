// A decoded image as a model input: turned upright by its EXIF orientation, resized with
// bilinear sampling (half-pixel centres, as tf.image.resize) to the spec's height x width,
// converted to its channels (grey = ITU-R 601 luma, as tf.image.rgbToGrayscale; alpha dropped)
// and each value p in 0..255 written as p * scale + offset.
import type { ImageInput } from '../schemas/edgeflow-json.ts';
import type { DecodedImage } from './decode.ts';

/** Upright size: orientations 5..8 swap width and height. */
export function uprightSize(image: Pick<DecodedImage, 'width' | 'height' | 'orientation'>): { width: number; height: number } {
  return image.orientation >= 5 ? { width: image.height, height: image.width } : { width: image.width, height: image.height };
}

/** The stored pixel index shown at upright (x, y). */
function storedIndex(image: DecodedImage, x: number, y: number): number {
  const { width: w, height: h } = image;
  let sx = x;
  let sy = y;
  switch (image.orientation) {
    case 2:
      sx = w - 1 - x;
      break;
    case 3:
      [sx, sy] = [w - 1 - x, h - 1 - y];
      break;
    case 4:
      sy = h - 1 - y;
      break;
    case 5:
      [sx, sy] = [y, x];
      break;
    case 6:
      [sx, sy] = [y, h - 1 - x];
      break;
    case 7:
      [sx, sy] = [w - 1 - y, h - 1 - x];
      break;
    case 8:
      [sx, sy] = [w - 1 - y, x];
      break;
  }
  return (sy * w + sx) * image.channels;
}

/** One pixel's value in the spec's channels (0..255), into out[at..]. */
function readPixel(image: DecodedImage, index: number, grey: boolean, out: Float64Array): void {
  const { data, channels } = image;
  if (channels >= 3) {
    const [r, g, b] = [data[index]!, data[index + 1]!, data[index + 2]!];
    if (grey) out[0] = 0.299 * r + 0.587 * g + 0.114 * b;
    else [out[0], out[1], out[2]] = [r, g, b];
  } else {
    out[0] = data[index]!;
    if (!grey) out[1] = out[2] = out[0];
  }
}

/** Writes the image as height x width x channels values into `out` at `at` (a batch's slot). */
export function imageToInput(image: DecodedImage, spec: ImageInput, out: Float32Array | Int32Array, at = 0): void {
  const upright = uprightSize(image);
  const grey = spec.channels === 'grayscale';
  const depth = grey ? 1 : 3;
  const scaleY = upright.height / spec.height;
  const scaleX = upright.width / spec.width;
  const corners = [new Float64Array(3), new Float64Array(3), new Float64Array(3), new Float64Array(3)] as const;
  const round = out instanceof Int32Array;
  for (let y = 0; y < spec.height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), upright.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, upright.height - 1);
    const dy = fy - y0;
    for (let x = 0; x < spec.width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), upright.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, upright.width - 1);
      const dx = fx - x0;
      readPixel(image, storedIndex(image, x0, y0), grey, corners[0]);
      readPixel(image, storedIndex(image, x1, y0), grey, corners[1]);
      readPixel(image, storedIndex(image, x0, y1), grey, corners[2]);
      readPixel(image, storedIndex(image, x1, y1), grey, corners[3]);
      const base = at + (y * spec.width + x) * depth;
      for (let c = 0; c < depth; c++) {
        const top = corners[0][c]! + (corners[1][c]! - corners[0][c]!) * dx;
        const bottom = corners[2][c]! + (corners[3][c]! - corners[2][c]!) * dx;
        const value = (top + (bottom - top) * dy) * spec.scale + spec.offset;
        out[base + c] = round ? Math.round(value) : value;
      }
    }
  }
}
