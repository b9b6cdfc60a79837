// Calibration from files: PNG / JPEG images go through the model's image spec with the same
// shared/image code `:classify` runs, are split to the model's fixed batch size, and every bad
// set of files is refused naming the file; calibration files carried with a model (calibration.json
// beside it, calibration/...) calibrate it. Real photos from ../shared/fixtures/images when present.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { calibrationFromFiles, takeCalibrationFiles, type CalibrationFile } from '../../converter/calibration-files.ts';
import { convertModel } from '../../converter/convert.ts';
import { decodeImage } from '../../shared/image/decode.ts';
import { imageToInput } from '../../shared/image/to-input.ts';
import type { ImageInput, TensorSignature } from '../../shared/schemas/edgeflow-json.ts';
import { FIXTURES, HAVE_FIXTURES, NO_FIXTURES_REASON, fixturePath, readFixture } from '../helpers/fixtures.ts';
import { OWN_CALIBRATION_IMAGES as OWN_IMAGES, tinyDenseModel, tinyImageModel } from '../helpers/tiny-models.ts';

const readImages = (folder: string): CalibrationFile[] =>
  readdirSync(folder)
    .filter((name) => /\.(png|jpe?g)$/i.test(name))
    .sort()
    .map((name) => ({ path: name, bytes: new Uint8Array(readFileSync(path.join(folder, name))) }));

const imageInput = (batch: number): TensorSignature[] => [{ name: 'x', dtype: 'float32', shape: [batch, 8, 8, 3] }];
const SPEC: ImageInput = { height: 8, width: 8, channels: 'rgb', scale: 1 / 255, offset: -0.5 };

beforeAll(async () => {
  await useNodeBackend();
});

describe('calibration images', () => {
  it('are decoded and preprocessed by the image spec exactly as :classify does, one sample each', () => {
    const images = readImages(OWN_IMAGES);
    expect(images.map((i) => i.path)).toEqual(['checker.png', 'gradient.png', 'stripes.png']);
    const calibration = calibrationFromFiles(images, imageInput(-1), SPEC);
    expect(calibration).toMatchObject({ kind: 'data', samples: 3 });
    expect(calibration.description).toBe('3 calibration images (8x8 rgb, pixel*0.00392156862745098+-0.5)');
    expect(calibration.batches.map((b) => b[0]!.shape)).toEqual([
      [1, 8, 8, 3],
      [1, 8, 8, 3],
      [1, 8, 8, 3],
    ]);
    images.forEach(({ bytes }, i) => {
      const expected = new Float32Array(8 * 8 * 3);
      imageToInput(decodeImage(bytes, 'x', 1e6), SPEC, expected);
      expect(calibration.batches[i]![0]!.values).toEqual(expected);
    });
    // Values in the spec's range: pixel/255 - 0.5.
    const all = calibration.batches.flatMap((b) => Array.from(b[0]!.values));
    expect(Math.min(...all)).toBeGreaterThanOrEqual(-0.5);
    expect(Math.max(...all)).toBeLessThanOrEqual(0.5);
  });

  it('are batched to the model fixed batch size (leftovers dropped, fewer refused)', () => {
    const images = readImages(OWN_IMAGES);
    const two = calibrationFromFiles(images, imageInput(2), SPEC);
    expect(two.samples).toBe(2);
    expect(two.batches.map((b) => b[0]!.shape)).toEqual([[2, 8, 8, 3]]);
    expect(() => calibrationFromFiles(images, imageInput(4), SPEC)).toThrow(/3 calibration images has 3 samples; the model takes batches of exactly 4/);
  });

  it('refuses an unreadable image by name, a model with no image spec, and mixed or unknown files', () => {
    const images = readImages(OWN_IMAGES);
    const broken = [...images, { path: 'truncated.png', bytes: images[0]!.bytes.subarray(0, 40) }];
    expect(() => calibrationFromFiles(broken, imageInput(-1), SPEC)).toThrow(/calibration image truncated\.png: corrupt PNG/);
    // A 5000x3000 PNG (IHDR patched): refused from its header, before anything is decoded.
    const huge = images[0]!.bytes.slice();
    new DataView(huge.buffer).setUint32(16, 5000);
    new DataView(huge.buffer).setUint32(20, 3000);
    expect(() => calibrationFromFiles([{ path: 'huge.png', bytes: huge }], imageInput(-1), SPEC)).toThrow(
      /calibration image huge\.png: a 5000x3000 image \(15000000 pixels\) exceeds the limit of 12000000 pixels/,
    );
    const text = [{ path: 'notes.png', bytes: new TextEncoder().encode('hello') }];
    expect(() => calibrationFromFiles(text, imageInput(-1), SPEC)).toThrow(/calibration image notes\.png: not a JPEG or PNG image/);
    expect(() => calibrationFromFiles(images, [{ name: 'x', dtype: 'float32', shape: [-1, 16] }], undefined)).toThrow(
      /calibration images need a model with one image input \[batch, height, width, 1\|3\]; this model takes x \[-1, 16\]: give --image/,
    );
    expect(() => calibrationFromFiles([...images, { path: 'calibration.json', bytes: new Uint8Array(2) }], imageInput(-1), SPEC)).toThrow(/give one \.json or \.npy file, or images only/);
    expect(() => calibrationFromFiles([{ path: 'x.gif', bytes: new Uint8Array(2) }], imageInput(-1), SPEC)).toThrow(/calibration file x\.gif: not a \.json, \.npy, \.png or \.jpg file/);
  });

  it('calibrate a conversion through the inferred image spec, and the report says data', async () => {
    const progress: string[] = [];
    const result = await convertModel(await tinyImageModel(), {
      name: 'tiny-image',
      quantize: 'uint8',
      calibrationFiles: readImages(OWN_IMAGES),
      onProgress: ({ detail }) => progress.push(detail),
    });
    expect(result.report).toMatchObject({ calibrationKind: 'data', samples: 3, passed: true });
    expect(result.report.calibration).toBe('3 calibration images (8x8 rgb, pixel*1+0)');
    // Given --image wins over the inferred one, and a fixed batch of 2 takes 2 of the 3 images.
    const fixed = await convertModel(await tinyImageModel(2), { name: 'tiny-image', quantize: 'float16', image: { height: 8, width: 8, scale: 1 / 255 }, calibrationFiles: readImages(OWN_IMAGES) });
    expect(fixed.report).toMatchObject({ calibrationKind: 'data', samples: 2 });
    expect(fixed.report.calibration).toMatch(/^3 calibration images \(8x8 rgb, pixel\*0\.00392/);
  });

  it('a model with no image input is refused by name when given images', async () => {
    await expect(convertModel(await tinyDenseModel(), { name: 'tiny', calibrationFiles: readImages(OWN_IMAGES) })).rejects.toThrow(/calibration images need a model with one image input/);
  });
});

describe('calibration files carried with a model', () => {
  it('takes calibration.json and calibration/... out of a model folder, and they calibrate it', async () => {
    const files = await tinyDenseModel();
    const instances = Array.from({ length: 5 }, (_, i) => Array.from({ length: 16 }, (_, j) => Math.sin(i + j)));
    files.set('calibration.json', new TextEncoder().encode(JSON.stringify({ instances })));
    const copy = new Map(files);
    expect(takeCalibrationFiles(copy).map((f) => f.path)).toEqual(['calibration.json']);
    expect([...copy.keys()].sort()).toEqual(['group1-shard1of1.bin', 'model.json']);

    const progress: string[] = [];
    const result = await convertModel(files, { name: 'tiny', onProgress: ({ detail }) => progress.push(detail) });
    expect(result.report).toMatchObject({ calibrationKind: 'data', samples: 5, calibration: 'calibration.json: 5 samples' });
    expect(progress).toContain('calibration files with the model: calibration.json');
    // The caller's calibration wins over the carried one.
    const given = await convertModel(files, { name: 'tiny', samples: 2, calibrationFiles: [{ path: 'mine.json', bytes: new TextEncoder().encode(JSON.stringify([instances[0], instances[1]])) }] });
    expect(given.report.calibration).toBe('mine.json: 2 samples');
    expect(files.has('calibration.json')).toBe(true);
  });
});

describe.skipIf(!HAVE_FIXTURES)('real photos (../shared/fixtures/images)', () => {
  it('calibrate the emotion graph model (64x64 grey) through --image with pixel/255', async () => {
    const photos = readImages(fixturePath('images'));
    expect(photos.length).toBeGreaterThanOrEqual(10);
    const result = await convertModel(readFixture('tfjs-graph/human-models/emotion.json'), {
      name: 'emotion',
      quantize: 'float16',
      image: { height: 64, width: 64, scale: 1 / 255 },
      calibrationFiles: photos,
    });
    expect(result.report).toMatchObject({ calibrationKind: 'data', samples: photos.length, top1Agreement: 1, passed: true });
    expect(result.report.calibration).toBe(`${photos.length} calibration images (64x64 grayscale, pixel*0.00392156862745098+0)`);
  });
});

describe.skipIf(HAVE_FIXTURES)('real photos', () => {
  it(`${NO_FIXTURES_REASON} (${FIXTURES}/images)`, () => {});
});
