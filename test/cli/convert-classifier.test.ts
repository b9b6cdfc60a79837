import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFolder } from '../../models/train/save.ts';
import { HAVE_FIXTURES, NO_FIXTURES_REASON, fixturePath } from '../helpers/fixtures.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';
import { runEdgeflow } from '../helpers/cli.ts';

const edgeflow = (args: string[]) => runEdgeflow(args);

let work: string;
let tinyDir: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'edgeflow-cli-classifier-'));
  tinyDir = path.join(work, 'tiny');
  writeFolder(tinyDir, await tinyDenseModel());
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const edgeflowJson = async (out: string, name: string) => JSON.parse(await readFile(path.join(out, `models/${name}/1/edgeflow.json`), 'utf8'));

describe('edgeflow convert --labels / --image', () => {
  it('records the labels of a --labels file (blank lines ignored, a leading index stripped) and shows them', async () => {
    const labels = path.join(work, 'labels.txt');
    await writeFile(labels, '0 cat\n1 dog\n\n2 bird\n3 fish\n');
    const out = path.join(work, 'store-labels');
    const result = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--labels', labels]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/labels\s+4 classes: cat, dog, bird, fish/);
    const metadata = await edgeflowJson(out, 'tiny');
    expect(metadata.labels).toEqual(['cat', 'dog', 'bird', 'fish']);
    expect(metadata.image).toBeUndefined();
  });

  it('refuses labels whose count is not the output classes, an image spec for a non-image input, and bad specs, naming them', async () => {
    const labels = path.join(work, 'three.txt');
    await writeFile(labels, 'a\nb\nc\n');
    const out = path.join(work, 'store-bad');
    const count = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--labels', labels]);
    expect(count.code).not.toBe(0);
    expect(count.stderr).toContain('--labels: 3 class names given, but output probs has 4 classes (its last dimension)');
    const image = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--image', '28x28']);
    expect(image.code).not.toBe(0);
    expect(image.stderr).toContain('--image: input hidden_input has shape [-1, 16], not [batch, height, width, channels]');
    const spec = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--image', '28x28,scale=x']);
    expect(spec.code).not.toBe(0);
    expect(spec.stderr).toContain('bad --image "28x28,scale=x": scale must be a number, got "x"');
    const missing = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--labels', path.join(work, 'nope.txt')]);
    expect(missing.stderr).toContain(`--labels ${path.join(work, 'nope.txt')}: no such file`);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });

  it.skipIf(!HAVE_FIXTURES)(
    'reads a Teachable Machine labels.txt beside keras_model.h5 and infers the image spec from its [-1, 64, 64, 1] input',
    async () => {
      const folder = path.join(work, 'tm');
      await mkdir(folder, { recursive: true });
      await copyFile(fixturePath('keras-h5/fer2013_mini_XCEPTION.102-0.66.hdf5'), path.join(folder, 'keras_model.h5'));
      const emotions = ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
      await writeFile(path.join(folder, 'labels.txt'), emotions.map((name, i) => `${i} ${name}`).join('\n'));
      const out = path.join(work, 'store-tm');
      const result = await edgeflow(['convert', path.join(folder, 'keras_model.h5'), '--name', 'emotions', '--out', out]);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain(`class labels from ${path.join(folder, 'labels.txt')}: 7 classes`);
      const metadata = await edgeflowJson(out, 'emotions');
      expect(metadata.labels).toEqual(emotions);
      expect(metadata.image).toEqual({ height: 64, width: 64, channels: 'grayscale', scale: 1, offset: 0 });
    },
    240_000,
  );
  it.skipIf(HAVE_FIXTURES)(`Teachable Machine labels.txt: ${NO_FIXTURES_REASON}`, () => {});
});
