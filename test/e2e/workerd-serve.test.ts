// The Worker inside workerd (Miniflare), built as `wrangler deploy` builds it, with models in R2:
// predictions of the nsfwjs MobileNetV2 fixture equal stock TF.js in Node, both API families,
// lazy loading, and every error status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { readInput } from '../../converter/read/files.ts';
import { convertAndPublish, convertModel } from '../../converter/convert.ts';
import { publishVersion, updateIndex } from '../../shared/bucket/publish.ts';
import { demoModels } from '../../scripts/demo-models.ts';
import { keys } from '../../shared/names.ts';
import { EdgeflowJson } from '../../shared/schemas/edgeflow-json.ts';
import { getJson } from '../../shared/store/util.ts';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { buildWorker, startWorker, type RunningWorker } from '../../scripts/edge-worker.ts';
import { FIXTURES as fixturesRoot } from '../helpers/fixtures.ts';
import { fixturePresent, MOBILENET_DIR } from '../helpers/publish-models.ts';
import { maxAbsDiff, stockPredict, testImages } from '../helpers/reference.ts';
import { readFile } from 'node:fs/promises';
import { decodeImage } from '../../shared/image/decode.ts';
import { imageToInput } from '../../shared/image/to-input.ts';
import { DEFAULT_LIMITS } from '../../functions/limits.ts';
import { greyJpeg, withOrientation } from '../helpers/images.ts';

const GRAPH_DIR = path.join(fixturesRoot, 'tfjs-graph/nsfwjs-mobilenet_v2_mid');
const hasFixture = await fixturePresent();
const hasGraphFixture = await fixturePresent(GRAPH_DIR);
if (!hasFixture) console.warn(`worker.test: ${MOBILENET_DIR} is absent: the MobileNetV2 comparisons are skipped`);

let worker: RunningWorker;
let bundleGzip = 0;
let bundleDir = '';

/**
 * POST with one retry on a network error: after a long pause (the stock reference runs for
 * seconds), undici may reuse a keep-alive socket that workerd has just closed (EPIPE).
 */
const post = async (path: string, body: unknown) => {
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) };
  try {
    return await worker.fetch(path, init);
  } catch {
    return worker.fetch(path, init);
  }
};

const json = async (response: Response) => (await response.json()) as Record<string, unknown>;

beforeAll(async () => {
  await useNodeBackend();
  const bundle = await buildWorker();
  bundleGzip = bundle.gzipBytes;
  bundleDir = bundle.dir;
  worker = await startWorker(bundle, { vars: { MAX_BODY_BYTES: String(12 * 1024 * 1024), MEMORY_BUDGET_MB: '64', MAX_ELEMENTS: '400000' } });
  for (const model of await demoModels()) await convertAndPublish(worker.store, model.files, { name: model.name, quantize: model.quantize, ...model.classifier, samples: 2 });
  if (hasFixture) {
    const files = await readInput(MOBILENET_DIR);
    await convertAndPublish(worker.store, files, { name: 'mobilenet', quantize: 'none', samples: 1 });
    await convertAndPublish(worker.store, files, { name: 'mobilenet', quantize: 'uint8', samples: 1 });
    await updateIndex(worker.store, 'mobilenet', (index) => ({ ...index, labels: { ...index.labels, stable: 1 } }));
  }
  if (hasGraphFixture) await convertAndPublish(worker.store, await readInput(GRAPH_DIR), { name: 'mobilenet-graph', quantize: 'none', samples: 1 });
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

describe('worker bundle and health', () => {
  it('fits the 500 KiB gzip target', () => {
    expect(bundleGzip).toBeGreaterThan(100 * 1024);
    expect(bundleGzip).toBeLessThanOrEqual(500 * 1024);
  });

  it('is live and ready, with wasm SIMD reported', async () => {
    expect(await json(await worker.fetch('/v2/health/live'))).toEqual({ live: true });
    const ready = await worker.fetch('/v2/health/ready');
    expect(ready.status).toBe(200);
    const body = await json(ready);
    expect(body.ready).toBe(true);
    expect(body.backend).toMatchObject({ backend: 'wasm', simd: true, threads: false, binary: 'tfjs-backend-wasm-simd.wasm' });
    const server = await json(await worker.fetch('/v2'));
    expect(server).toMatchObject({ name: 'edgeflow', extensions: ['binary_tensor_data'], edgeflow: { platform: 'workerd', backend: { simd: true } } });
  });
});

describe.skipIf(!hasFixture)('nsfwjs MobileNetV2 from R2 inside workerd', () => {
  const images = testImages(2);
  let stock: number[][];
  let stockUint8: number[][];

  beforeAll(async () => {
    stock = await stockPredict(await readInput(MOBILENET_DIR), images);
    const published = new Map<string, Uint8Array>();
    const edgeflow = EdgeflowJson.parse((await getJson(worker.store, keys.versionFile('mobilenet', 2, 'edgeflow.json')))!.value);
    for (const file of Object.keys(edgeflow.files)) published.set(file, (await worker.store.get(keys.versionFile('mobilenet', 2, file)))!.body);
    stockUint8 = await stockPredict(published, images);
  }, 120_000);

  it('TF Serving predict (instances) equals stock TF.js within 1e-4, with Server-Timing', async () => {
    const response = await post('/v1/models/mobilenet/versions/1:predict', { instances: images.nested });
    expect(response.status).toBe(200);
    const timing = response.headers.get('server-timing') ?? '';
    expect(timing).toMatch(/^read;dur=[\d.]+, ?parse;dur=[\d.]+, ?load;dur=[\d.]+, ?decode;dur=[\d.]+, ?infer;dur=[\d.]+, ?encode;dur=[\d.]+$/);
    const { predictions } = (await response.json()) as { predictions: number[][] };
    expect(predictions).toHaveLength(2);
    expect(predictions[0]).toHaveLength(5);
    expect(maxAbsDiff(predictions, stock)).toBeLessThan(1e-4);
  });

  it('Open Inference infer (flat data) equals stock TF.js within 1e-4', async () => {
    const response = await post('/v2/models/mobilenet/versions/1/infer', { id: 'r1', inputs: [{ name: 'input_1', shape: images.shape, datatype: 'FP32', data: Array.from(images.values) }] });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { id: string; model_version: string; outputs: { name: string; shape: number[]; datatype: string; data: number[] }[] };
    expect(body).toMatchObject({ id: 'r1', model_name: 'mobilenet', model_version: '1' });
    expect(body.outputs[0]).toMatchObject({ name: 'dense_3', shape: [2, 5], datatype: 'FP32' });
    const rows = [body.outputs[0]!.data.slice(0, 5), body.outputs[0]!.data.slice(5)];
    expect(maxAbsDiff(rows, stock)).toBeLessThan(1e-4);
  });

  it('the uint8 version (latest) equals stock TF.js on the same published files; labels select versions', async () => {
    const latest = (await (await post('/v1/models/mobilenet:predict', { instances: images.nested })).json()) as { predictions: number[][] };
    expect(maxAbsDiff(latest.predictions, stockUint8)).toBeLessThan(1e-4);
    const stable = (await (await post('/v1/models/mobilenet/labels/stable:predict', { inputs: images.nested })).json()) as { outputs: number[][] };
    expect(maxAbsDiff(stable.outputs, stock)).toBeLessThan(1e-4);
    const status = await json(await worker.fetch('/v1/models/mobilenet'));
    expect(status.model_version_status).toEqual([
      { version: '2', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
      { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
    ]);
  });

  it('raw float32 bytes as {"b64": ...} give the same predictions', async () => {
    const bytes = new Uint8Array(images.values.buffer, 0, (images.values.length / 2) * 4);
    const b64 = Buffer.from(bytes).toString('base64');
    const body = (await (await post('/v1/models/mobilenet/versions/1:predict', { instances: [{ b64 }] })).json()) as { predictions: number[][] };
    expect(maxAbsDiff(body.predictions, [stock[0]!])).toBeLessThan(1e-4);
  });
});

describe.skipIf(!hasGraphFixture)('a graph model (nsfwjs MobileNetV2 graph) from R2 inside workerd', () => {
  it('equals stock tf.loadGraphModel in Node within 1e-4 on both APIs', async () => {
    const images = testImages(1, 224, 8);
    const stock = await stockPredict(await readInput(GRAPH_DIR), images, 'graph');
    const tfs = (await (await post('/v1/models/mobilenet-graph:predict', { instances: images.nested })).json()) as { predictions: number[][] };
    expect(maxAbsDiff(tfs.predictions, stock)).toBeLessThan(1e-4);
    const v2 = (await (await post('/v2/models/mobilenet-graph/infer', { inputs: [{ name: 'input', shape: images.shape, datatype: 'FP32', data: images.nested }] })).json()) as {
      outputs: { name: string; data: number[] }[];
    };
    expect(v2.outputs[0]!.name).toBe('Identity');
    expect(maxAbsDiff([v2.outputs[0]!.data], stock)).toBeLessThan(1e-4);
    expect(await (await worker.fetch('/v2/models/mobilenet-graph')).json()).toMatchObject({ platform: 'tensorflowjs_graph', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 224, 224, 3] }] });
  });
});

describe('both API families on the demo models', () => {
  it('TF Serving metadata comes from the signature, with stable names', async () => {
    const body = (await json(await worker.fetch('/v1/models/iris-dense/metadata'))) as {
      model_spec: unknown;
      metadata: { signature_def: { signature_def: { serving_default: { inputs: Record<string, unknown>; outputs: Record<string, unknown>; method_name: string } } } };
    };
    expect(body.model_spec).toEqual({ name: 'iris-dense', signature_name: '', version: '1' });
    const def = body.metadata.signature_def.signature_def.serving_default;
    expect(def.method_name).toBe('tensorflow/serving/predict');
    expect(def.inputs).toEqual({
      hidden_input: {
        dtype: 'DT_FLOAT',
        tensor_shape: {
          dim: [
            { size: '-1', name: '' },
            { size: '4', name: '' },
          ],
          unknown_rank: false,
        },
        name: 'hidden_input',
      },
    });
    expect(Object.keys(def.outputs)).toEqual(['species']);
  });

  it('rows, columns, b64 and every numeric v2 datatype agree', async () => {
    const rows = (await (
      await post('/v1/models/iris-dense:predict', {
        signature_name: 'serving_default',
        instances: [
          [5, 3, 1, 0],
          [6, 3, 5, 2],
        ],
      })
    ).json()) as { predictions: number[][] };
    expect(rows.predictions).toHaveLength(2);
    expect(rows.predictions[0]!.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const columns = (await (
      await post('/v1/models/iris-dense:predict', {
        inputs: {
          hidden_input: [
            [5, 3, 1, 0],
            [6, 3, 5, 2],
          ],
        },
      })
    ).json()) as { outputs: number[][] };
    expect(columns.outputs).toEqual(rows.predictions);
    const b64 = Buffer.from(new Float32Array([5, 3, 1, 0]).buffer).toString('base64');
    const raw = (await (await post('/v1/models/iris-dense:predict', { instances: [{ b64 }] })).json()) as { predictions: number[][] };
    expect(raw.predictions[0]).toEqual(rows.predictions[0]);
    for (const datatype of ['UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64']) {
      const response = await post('/v2/models/iris-dense/infer', {
        inputs: [
          {
            name: 'hidden_input',
            shape: [2, 4],
            datatype,
            data: [
              [5, 3, 1, 0],
              [6, 3, 5, 2],
            ],
          },
        ],
      });
      expect(response.status, datatype).toBe(200);
      const body = (await response.json()) as { outputs: { data: number[] }[] };
      expect(body.outputs[0]!.data, datatype).toEqual(rows.predictions.flat());
    }
    const bools = await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'BOOL', data: [true, false, true, true] }] });
    expect(bools.status).toBe(200);
  });

  it('v2 model metadata, ready, and outputs selection', async () => {
    const metadata = await json(await worker.fetch('/v2/models/mnist-cnn'));
    expect(metadata).toMatchObject({
      name: 'mnist-cnn',
      versions: ['1'],
      platform: 'tensorflowjs_layers',
      inputs: [{ name: 'conv1_input', datatype: 'FP32', shape: [-1, 28, 28, 1] }],
      outputs: [{ name: 'digits', datatype: 'FP32', shape: [-1, 10] }],
    });
    const ready = await worker.fetch('/v2/models/mnist-cnn/versions/1/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ name: 'mnist-cnn', version: '1', ready: true });
    const data = new Array(28 * 28).fill(0.5);
    const selected = (await (await post('/v2/models/mnist-cnn/infer', { inputs: [{ name: 'conv1_input', shape: [1, 28, 28, 1], datatype: 'FP32', data }], outputs: [{ name: 'digits' }] })).json()) as {
      outputs: { name: string; shape: number[] }[];
    };
    expect(selected.outputs.map((o) => [o.name, o.shape])).toEqual([['digits', [1, 10]]]);
  });

  it('concurrent first requests share one load, and tensors stay flat over many requests', async () => {
    await convertAndPublish(worker.store, (await demoModels())[0]!.files, { name: 'fresh', quantize: 'none', samples: 1 });
    const responses = await Promise.all(Array.from({ length: 6 }, () => post('/v1/models/fresh:predict', { instances: [[1, 2, 3, 4]] })));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const stats = (await json(await worker.fetch('/'))).models as { models: { key: string; uses: number }[]; tensors: number; loading: string[] };
    expect(stats.models.filter((m) => m.key === 'fresh/1')).toEqual([expect.objectContaining({ uses: 6 })]);
    const before = stats.tensors;
    for (let i = 0; i < 40; i++)
      await post('/v1/models/fresh:predict', {
        instances: [
          [i, 2, 3, 4],
          [4, 3, 2, i],
        ],
      });
    await post('/v1/models/fresh:predict', { instances: [[1, 2]] });
    const after = ((await json(await worker.fetch('/'))).models as { tensors: number }).tensors;
    expect(after).toBe(before);
  });
});

describe(':classify inside workerd (jpeg-js and fast-png without Node APIs)', () => {
  const mnistImage = { height: 28, width: 28, channels: 'grayscale', scale: 1 / 255, offset: 0 } as const;
  /** :predict on the pixels Node decodes from the same bytes: what :classify must score. */
  const predictOnNodePixels = async (bytes: Uint8Array) => {
    const pixels = new Float32Array(28 * 28);
    imageToInput(decodeImage(bytes, 'image', DEFAULT_LIMITS.maxImagePixels), mnistImage, pixels);
    const instance = Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [pixels[y * 28 + x]!]));
    return ((await (await post('/v1/models/mnist-cnn:predict', { instances: [instance] })).json()) as { predictions: number[][] }).predictions[0]!;
  };
  const scoresByDigit = (ranked: [string, number][]) => Array.from({ length: 10 }, (_, digit) => ranked.find(([label]) => label === String(digit))![1]);

  it('metadata carries the demo labels and image spec', async () => {
    expect((await json(await worker.fetch('/v1/models/iris-dense/metadata'))).edgeflow).toMatchObject({ labels: ['setosa', 'versicolor', 'virginica'], image: null });
    expect((await json(await worker.fetch('/v2/models/mnist-cnn'))).parameters).toMatchObject({ labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], image: mnistImage });
  });

  it('classifies a raw PNG and an EXIF-rotated JPEG in JSON as Node decodes them', async () => {
    const png = new Uint8Array(await readFile(new URL('../fixtures/images/digit-7.png', import.meta.url)));
    const raw = await worker.fetch('/v1/models/mnist-cnn:classify', { method: 'POST', body: png, headers: { 'content-type': 'image/png' } });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('server-timing')).toMatch(/decode;dur=/);
    const [ranked] = ((await raw.json()) as { result: [string, number][][] }).result;
    expect(ranked!.map(([, score]) => score)).toEqual(ranked!.map(([, score]) => score).sort((a, b) => b - a));
    expect(maxAbsDiff([scoresByDigit(ranked!)], [await predictOnNodePixels(png)])).toBeLessThan(1e-5);
    const stripes = Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => (x < 10 && y < 20 ? 250 : 10)));
    const jpeg = withOrientation(greyJpeg(stripes), 6);
    const answer = await post('/v1/models/mnist-cnn:classify', { examples: [{ conv1_input: { b64: Buffer.from(jpeg).toString('base64') } }], top_k: 3 });
    expect(answer.status).toBe(200);
    const [top] = ((await answer.json()) as { result: [string, number][][] }).result;
    const expected = (await predictOnNodePixels(jpeg)).map((score, digit) => [String(digit), score] as [string, number]).sort((a, b) => b[1] - a[1]);
    expect(top!.map(([label]) => label)).toEqual(expected.slice(0, 3).map(([label]) => label));
    expect(maxAbsDiff([top!.map(([, score]) => score)], [expected.slice(0, 3).map(([, score]) => score)])).toBeLessThan(1e-5);
  });

  it('answers 415 for another content type and 400 naming a corrupt image', async () => {
    const refused = await worker.fetch('/v1/models/mnist-cnn:classify', { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } });
    expect(refused.status).toBe(415);
    const corrupt = await worker.fetch('/v1/models/mnist-cnn:classify', { method: 'POST', body: greyJpeg([[1, 2]]).slice(0, 25), headers: { 'content-type': 'image/jpeg' } });
    expect([corrupt.status, (await json(corrupt)).error]).toEqual([400, 'body: corrupt JPEG (no frame header with its size; truncated?)']);
  });
});

describe('errors: {"error": "..."} naming the field, with the right status', () => {
  const expectError = async (response: Response, status: number, pattern: RegExp) => {
    expect(response.status).toBe(status);
    const body = await json(response);
    expect(Object.keys(body)).toContain('error');
    expect(String(body.error)).toMatch(pattern);
  };

  it('400 for bad bodies, shapes, datatypes and names', async () => {
    await expectError(await post('/v1/models/iris-dense:predict', '{"instances": [1,'), 400, /^body: not valid JSON/);
    await expectError(await post('/v1/models/iris-dense:predict', { instances: [[1, 2, 3, 4]], inputs: [[1, 2, 3, 4]] }), 400, /exactly one of "instances"/);
    await expectError(await post('/v1/models/iris-dense:predict', {}), 400, /exactly one of "instances"/);
    await expectError(await post('/v1/models/iris-dense:predict', { instances: [[1, 2, 3]] }), 400, /^instances: shape \[1, 3\] does not match the model's \[any, 4\]/);
    await expectError(
      await post('/v1/models/iris-dense:predict', {
        instances: [
          [1, 2, 3, 4],
          [1, 2, 3],
        ],
      }),
      400,
      /^instances\[1\]: expected 4 elements/,
    );
    await expectError(await post('/v1/models/iris-dense:predict', { instances: [[1, 2, 'x', 4]] }), 400, /^instances\[0\]\[2\]: expected a number/);
    await expectError(await post('/v1/models/iris-dense:predict', { signature_name: 'other', instances: [[1, 2, 3, 4]] }), 400, /^signature_name: unknown signature/);
    await expectError(await post('/v1/models/iris-dense:predict', { instances: [{ b64: 'AAAA' }] }), 400, /^instances\[0\]\.b64: b64 holds 3 bytes/);
    // workerd decodes with Uint8Array.fromBase64; a bad character still gets named.
    await expectError(await post('/v1/models/iris-dense:predict', { instances: [{ b64: 'AB$C' }] }), 400, /^instances\[0\]\.b64: b64 is not valid base64 \(character "\$" at 2\)/);
    await expectError(await post('/v1/models/iris-dense:predict', { instances: Array.from({ length: 65 }, () => [1, 2, 3, 4]) }), 400, /^instances: batch of 65 exceeds the limit of 64/);
    await expectError(await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP33', data: [1, 2, 3, 4] }] }), 400, /^inputs\[0\]\.datatype: /);
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'nope', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      400,
      /^inputs\[0\]\.name: the model has no input "nope"/,
    );
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'UINT8', data: [1, 2, 300, 4] }] }),
      400,
      /^inputs\[0\]\.data\[2\]: 300 is out of range for UINT8/,
    );
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'INT32', data: [1, 2, 3.5, 4] }] }),
      400,
      /^inputs\[0\]\.data\[2\]: INT32 needs integers/,
    );
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'BYTES', data: ['a', 'b', 'c', 'd'] }] }),
      400,
      /^inputs\[0\]\.datatype: BYTES does not fit the model input hidden_input \(FP32\)/,
    );
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] }),
      400,
      /^inputs\[0\]\.shape: shape \[1, 5\] does not match/,
    );
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      400,
      /^inputs\[0\]\.data: expected 2 elements/,
    );
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], outputs: [{ name: 'nope' }] }),
      400,
      /^outputs\[0\]\.name: the model has no output "nope"/,
    );
    await expectError(await post('/v2/models/iris-dense/infer', { inputs: [] }), 400, /^inputs: inputs must list at least one tensor/);
    await expectError(
      await post('/v2/models/iris-dense/infer', { inputs: [{ name: 'hidden_input', shape: [0, 4], datatype: 'FP32', data: [] }] }),
      400,
      /^inputs\[0\]\.shape: shape \[0, 4\] has a dimension of 0/,
    );
  });

  it('404 for unknown models, versions, labels and routes', async () => {
    await expectError(await post('/v1/models/nope:predict', { instances: [[1, 2, 3, 4]] }), 404, /model "nope" not found/);
    await expectError(await post('/v1/models/iris-dense/versions/9:predict', { instances: [[1, 2, 3, 4]] }), 404, /has no version 9/);
    await expectError(await worker.fetch('/v1/models/iris-dense/labels/canary'), 404, /has no label "canary"/);
    await expectError(await worker.fetch('/v2/models/nope'), 404, /model "nope" not found/);
    await expectError(await worker.fetch('/v2/models/iris-dense/versions/x/ready'), 404, /has no version "x"/);
    await expectError(await post('/v2/models/iris-dense/versions/3/infer', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }), 404, /has no version 3/);
    await expectError(await worker.fetch('/v3/anything'), 404, /no route GET \/v3\/anything/);
  });

  it('413 beyond the body limit', async () => {
    await expectError(
      await post('/v1/models/iris-dense:predict', `{"instances": [[1, 2, 3, 4]], "pad": "${'x'.repeat(12 * 1024 * 1024)}"}`),
      413,
      /^body: \d+ bytes exceed the limit of 12582912 bytes$/,
    );
  });

  it('503 when a load fails (with the reason), not cached: the next request loads again', async () => {
    const files = (await demoModels())[0]!.files;
    await convertAndPublish(worker.store, files, { name: 'broken', quantize: 'none', samples: 1 });
    const edgeflow = EdgeflowJson.parse((await getJson(worker.store, keys.versionFile('broken', 1, 'edgeflow.json')))!.value);
    const shard = Object.keys(edgeflow.files).find((f) => f.endsWith('.bin'))!;
    const good = (await worker.store.get(keys.versionFile('broken', 1, shard)))!.body.slice();
    const bad = good.slice();
    bad[0] ^= 0xff;
    await worker.store.put(keys.versionFile('broken', 1, shard), bad);
    await expectError(
      await post('/v1/models/broken:predict', { instances: [[1, 2, 3, 4]] }),
      503,
      new RegExp(`^model broken version 1 failed to load: ${shard.replace(/[.]/g, '\\.')} fails its sha256 check`),
    );
    expect(((await json(await worker.fetch('/v1/models/broken'))).model_version_status as { state: string }[])[0]!.state).toBe('END');
    await expectError(await worker.fetch('/v2/models/broken/ready'), 503, /fails its sha256 check/);
    await worker.store.put(keys.versionFile('broken', 1, shard), good);
    expect((await post('/v1/models/broken:predict', { instances: [[1, 2, 3, 4]] })).status).toBe(200);
  });

  it('503 for a model larger than the isolate memory budget', async () => {
    const converted = await convertModel((await demoModels())[0]!.files, { name: 'huge', quantize: 'none', samples: 1 });
    await publishVersion(worker.store, { name: 'huge', files: converted.modelFiles.files, metadata: converted.metadata });
    // Version 2 claims 200 MiB of float32 weights in its edgeflow.json: refused before loading.
    await publishVersion(worker.store, { name: 'huge', files: converted.modelFiles.files, metadata: { ...converted.metadata, sizes: { ...converted.metadata.sizes, float32: 200 * 1024 * 1024 } } });
    await expectError(await post('/v1/models/huge:predict', { instances: [[1, 2, 3, 4]] }), 503, /needs 200\.0 MiB of weights, more than this isolate's model memory budget of 64\.0 MiB/);
    expect((await post('/v1/models/huge/versions/1:predict', { instances: [[1, 2, 3, 4]] })).status).toBe(200);
  });
});
