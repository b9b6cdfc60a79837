// Binary request and answer bodies in the Worker as wrangler builds it, in workerd with R2: the
// KServe v2 binary tensor data extension (binary in == JSON in, binary out decodes to the JSON
// answer's numbers), TF Serving's raw octet-stream :predict (== instances), b64 bytes through the
// engine's Uint8Array.fromBase64, and Server-Timing's read and parse entries (printed for a
// 224x224x3 MobileNetV2 request when the fixture is present).
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { readInput } from '../../converter/read/files.ts';
import { buildWorker, type RunningWorker, startWorker } from '../../scripts/edge-worker.ts';
import { demoModels } from '../../scripts/demo-models.ts';
import { fixturePresent, MOBILENET_DIR } from '../helpers/publish-models.ts';
import { fixedValues } from '../helpers/tiny-models.ts';
import { binaryRequest, readBinaryResponse } from '../helpers/v2-binary.ts';

const hasMobileNet = await fixturePresent();
let worker: RunningWorker;
let bundleDir = '';

beforeAll(async () => {
  await useNodeBackend();
  const bundle = await buildWorker();
  bundleDir = bundle.dir;
  worker = await startWorker(bundle, { vars: { MAX_BODY_BYTES: String(12 * 1024 * 1024) } });
  for (const model of await demoModels()) await convertAndPublish(worker.store, model.files, { name: model.name, quantize: model.quantize, ...model.classifier, samples: 1 });
  if (hasMobileNet) await convertAndPublish(worker.store, await readInput(MOBILENET_DIR), { name: 'mobilenet', quantize: 'uint8', samples: 1 });
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

const IRIS = [5.1, 3.5, 1.4, 0.2, 6.7, 3.1, 5.6, 2.4];
const post = (path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = { 'content-type': 'application/json' }) => worker.fetch(path, { method: 'POST', body, headers });
const postJson = (path: string, json: unknown) => post(path, JSON.stringify(json));
const SERVER_TIMING = /^read;dur=[\d.]+, ?parse;dur=[\d.]+, ?load;dur=[\d.]+, ?decode;dur=[\d.]+, ?infer;dur=[\d.]+, ?encode;dur=[\d.]+$/;

describe('binary bodies in workerd', () => {
  it('v2: binary FP32 in answers what JSON in does; binary out holds the JSON answer numbers', async () => {
    const input = { name: 'hidden_input', shape: [2, 4], datatype: 'FP32' };
    const jsonAnswer = await postJson('/v2/models/iris-dense/infer', { inputs: [{ ...input, data: IRIS }] });
    expect(jsonAnswer.status).toBe(200);
    const json = (await jsonAnswer.json()) as { outputs: { name: string; data: number[] }[] };
    const { body, headers } = binaryRequest({ inputs: [{ ...input, parameters: { binary_data_size: 32 } }] }, new Float32Array(IRIS));
    const binaryIn = await post('/v2/models/iris-dense/infer', body, headers);
    expect(binaryIn.headers.get('server-timing')).toMatch(SERVER_TIMING);
    expect(await binaryIn.json()).toEqual(json);
    const out = binaryRequest({ inputs: [{ ...input, parameters: { binary_data_size: 32 } }], parameters: { binary_data_output: true } }, new Float32Array(IRIS));
    const binaryOut = await post('/v2/models/iris-dense/infer', out.body, out.headers);
    expect(binaryOut.headers.get('content-type')).toBe('application/octet-stream');
    expect((await readBinaryResponse(binaryOut)).values.get(json.outputs[0]!.name)).toEqual(json.outputs[0]!.data);
  });

  it('v2: an inconsistent binary body is a 400 naming it', async () => {
    const { body, headers } = binaryRequest({ inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 12 } }] }, new Float32Array(3));
    const response = await post('/v2/models/iris-dense/infer', body, headers);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'inputs[0].parameters.binary_data_size: 12 bytes, but shape [1, 4] of FP32 is 16 bytes (4 x 4)' });
  });

  it('TF Serving: a raw uint8 body and b64 float32 bytes answer what instances do', async () => {
    const pixels = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256);
    const rows = Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [pixels[y * 28 + x]!]));
    const reference = await (await postJson('/v1/models/mnist-cnn:predict', { instances: [rows] })).json();
    const raw = await post('/v1/models/mnist-cnn:predict?dtype=uint8', new Uint8Array(pixels), { 'content-type': 'application/octet-stream' });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('server-timing')).toMatch(SERVER_TIMING);
    expect(await raw.json()).toEqual(reference);
    const b64 = Buffer.from(new Float32Array(pixels).buffer).toString('base64');
    expect(await (await postJson('/v1/models/mnist-cnn:predict', { instances: [{ b64 }] })).json()).toEqual(reference);
  });

  it.skipIf(!hasMobileNet)('MobileNetV2 224x224x3: JSON, binary and raw bodies give one answer; Server-Timing printed (skipped without the fixture)', async () => {
    const pixels = fixedValues(224 * 224 * 3, 5).map((v) => (v + 1) / 2);
    const name = ((await (await worker.fetch('/v2/models/mobilenet')).json()) as { inputs: { name: string }[] }).inputs[0]!.name;
    const input = { name, shape: [1, 224, 224, 3], datatype: 'FP32' };
    const json = await postJson('/v2/models/mobilenet/infer', { inputs: [{ ...input, data: Array.from(pixels) }] });
    expect(json.status).toBe(200);
    const jsonTiming = json.headers.get('server-timing');
    const expected = (await json.json()) as { outputs: { data: number[] }[] };
    const { body, headers } = binaryRequest({ inputs: [{ ...input, parameters: { binary_data_size: pixels.byteLength } }] }, pixels);
    const binary = await post('/v2/models/mobilenet/infer', body, headers);
    const binaryTiming = binary.headers.get('server-timing');
    expect(await binary.json()).toEqual(expected);
    const raw = await post('/v1/models/mobilenet:predict', new Uint8Array(pixels.buffer), { 'content-type': 'application/octet-stream' });
    expect(((await raw.json()) as { predictions: number[][] }).predictions[0]).toEqual(expected.outputs[0]!.data);
    console.log(`workerd MobileNetV2 Server-Timing\n  JSON   ${jsonTiming}\n  binary ${binaryTiming}\n  raw    ${raw.headers.get('server-timing')}`);
  });
});
