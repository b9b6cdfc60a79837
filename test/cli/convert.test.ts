import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFolder } from '../../models/train/save.ts';
import { readIndex } from '../../shared/bucket/published.ts';
import { S3Store } from '../../shared/store/s3.ts';
import { HAVE_FIXTURES, NO_FIXTURES_REASON, fixturePath } from '../helpers/fixtures.ts';
import { startS3rver, type RunningS3 } from '../helpers/s3rver.ts';
import { OWN_CALIBRATION_IMAGES, tinyDenseModel, tinyImageModel } from '../helpers/tiny-models.ts';
import { runEdgeflow } from '../helpers/cli.ts';

const edgeflow = (args: string[], env: Record<string, string> = {}) => runEdgeflow(args, { env: { ...process.env, ...env } });

let work: string;
let tinyDir: string;
let s3: RunningS3;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'edgeflow-cli-'));
  tinyDir = path.join(work, 'tiny');
  writeFolder(tinyDir, await tinyDenseModel());
  s3 = await startS3rver();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await s3?.close();
});

describe('edgeflow convert', () => {
  it('converts a model folder into a folder store, showing progress and a summary table', async () => {
    const out = path.join(work, 'store');
    const result = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--quantize', 'uint8', '--shard-size', '1KiB']);
    expect(result.stderr).toMatch(/backend\s+TF\.js wasm with SIMD/);
    expect(result.stderr).toMatch(/verify\s+loading the converted files with stock TF\.js/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/size before .*\nsize after .*\nratio\s+weights \d+\.\d\dx smaller than float32/);
    expect(result.stdout).toMatch(/dtypes\s+uint8: 4/);
    expect(result.stdout).toMatch(/version\s+1 published/);
    const index = JSON.parse(await readFile(path.join(out, 'models/tiny/index.json'), 'utf8'));
    expect(index.labels.latest).toBe(1);
    const modelJson = JSON.parse(await readFile(path.join(out, 'models/tiny/1/model.json'), 'utf8'));
    expect(modelJson.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);
  });

  it.skipIf(!HAVE_FIXTURES)('converts a graph model.json into s3://bucket/prefix', async () => {
    const result = await edgeflow(['convert', fixturePath('tfjs-graph/human-models/emotion.json'), '--name', 'emotion', '--out', `s3://${s3.bucket}/team-a`, '--quantize', 'float16'], s3.env);
    expect(result.stderr).not.toMatch(/Error:/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/top-1 agreement\s+100\.0% of 8 samples/);
    const store = new S3Store({ bucket: s3.bucket, prefix: 'team-a', client: s3.client });
    expect((await readIndex(store, 'emotion'))!.index.versions.map((v) => v.version)).toEqual([1]);
  });

  it.skipIf(HAVE_FIXTURES)(NO_FIXTURES_REASON, () => {});

  it('verifies on a calibration file', async () => {
    const out = path.join(work, 'calibrated');
    const calibration = path.join(work, 'calibration.json');
    await writeFile(calibration, JSON.stringify({ instances: [Array(16).fill(0.5), Array(16).fill(-1)] }));
    const result = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--calibration', calibration]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/of 2 samples/);
    const bad = path.join(work, 'bad-calibration.json');
    await writeFile(bad, JSON.stringify({ instances: [[1, 2, 3]] }));
    const refused = await edgeflow(['convert', tinyDir, '--name', 'tiny', '--out', out, '--calibration', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/calibration.*has shape \[1,3\]; input .* needs \[-1,16\]/);
  });

  it('calibrates on a folder of images (or one image) through the image spec; refuses a folder with none', async () => {
    const imageDir = path.join(work, 'tiny-image');
    writeFolder(imageDir, await tinyImageModel());
    const out = path.join(work, 'images');
    const result = await edgeflow(['convert', imageDir, '--name', 'tiny-image', '--out', out, '--calibration', OWN_CALIBRATION_IMAGES, '--image', '8x8,scale=0.00392156862745098']);
    expect(result.stderr).not.toMatch(/Error:/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/calibration\s+3 calibration images \(8x8 rgb, pixel\*0\.00392156862745098\+0\)/);
    const one = await edgeflow(['convert', imageDir, '--name', 'tiny-image', '--out', out, '--calibration', path.join(OWN_CALIBRATION_IMAGES, 'gradient.png')]);
    expect(one.stdout).toMatch(/calibration\s+1 calibration image \(8x8 rgb, pixel\*1\+0\)/);
    const empty = path.join(work, 'no-images');
    await mkdir(empty);
    await writeFile(path.join(empty, 'notes.txt'), 'not an image');
    const refused = await edgeflow(['convert', imageDir, '--name', 'tiny-image', '--out', out, '--calibration', empty]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/--calibration .*no-images: the folder has no PNG or JPEG images/);
  });

  it('fails with a clear message and exit code on bad input or usage', async () => {
    const out = path.join(work, 'refused');
    const missing = await edgeflow(['convert', path.join(work, 'nope'), '--name', 'x', '--out', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/edgeflow convert: .*nope: no such file or folder/);
    const badName = await edgeflow(['convert', tinyDir, '--name', 'Bad Name', '--out', out]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toMatch(/invalid model name "Bad Name"/);
    const usage = await edgeflow(['convert', tinyDir]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--name and --out are required/);
    const help = await edgeflow(['convert', '--help']);
    expect(help.stdout).toMatch(/--quantize <spec>/);
  });
});
