// Binary request and answer bodies on the Node app in process: the KServe v2 binary tensor data
// extension (binary in == JSON in, binary out decodes to the JSON answer's numbers, inputs cut in
// order, mixed with JSON data), TF Serving's raw octet-stream :predict (== instances), the
// Server-Timing read and parse entries, and base64 through Node's Buffer. The hostile variants
// are in the hostile HTTP table (test/helpers/hostile-requests.ts).
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { readInput } from '../../converter/read/files.ts';
import { createNodeApp } from '../../functions/node.ts';
import { modelFiles } from '../../models/train/save.ts';
import { demoModels } from '../../scripts/demo-models.ts';
import { decodeBase64, encodeBase64 } from '../../shared/codecs.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { fixturePresent, MOBILENET_DIR } from '../helpers/publish-models.ts';
import { fixedValues, setFixedWeights } from '../helpers/tiny-models.ts';
import { binaryRequest, INFERENCE_HEADER, readBinaryResponse } from '../helpers/v2-binary.ts';

const store = new MemoryStore();
const hasMobileNet = await fixturePresent();
let app: ReturnType<typeof createNodeApp>['app'];

/** Two inputs, a [2] and b [3], concatenated into a Dense of 2 units: the order of binary slices shows. */
async function twoInputModel() {
  const a = tfl.input({ shape: [2], name: 'a' });
  const b = tfl.input({ shape: [3], name: 'b' });
  const joined = tfl.layers.concatenate().apply([a, b]) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 2, name: 'out' }).apply(joined) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: [a, b], outputs: out });
  setFixedWeights(model, 7);
  const files = await modelFiles(model);
  model.dispose();
  return files;
}

beforeAll(async () => {
  await useNodeBackend();
  for (const model of await demoModels()) await convertAndPublish(store, model.files, { name: model.name, quantize: model.quantize, ...model.classifier, samples: 1 });
  await convertAndPublish(store, await twoInputModel(), { name: 'two-inputs', quantize: 'none', samples: 1 });
  if (hasMobileNet) await convertAndPublish(store, await readInput(MOBILENET_DIR), { name: 'mobilenet', quantize: 'uint8', samples: 1 });
  app = createNodeApp({ store, limits: { maxBodyBytes: 12 * 1024 * 1024 } }).app;
}, 180_000);

const IRIS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.7, 3.1, 5.6, 2.4],
];
const irisInput = (extra: Record<string, unknown>) => ({ name: 'hidden_input', shape: [2, 4], datatype: 'FP32', ...extra });
const post = (path: string, body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = { 'content-type': 'application/json' }) => app.request(path, { method: 'POST', body, headers });
const postJson = (path: string, json: unknown) => post(path, JSON.stringify(json));
const SERVER_TIMING = /^read;dur=[\d.]+,parse;dur=[\d.]+,load;dur=[\d.]+,decode;dur=[\d.]+,infer;dur=[\d.]+,encode;dur=[\d.]+$/;

describe('KServe v2 binary tensor data', () => {
  it('binary FP32 in answers exactly what the same values as JSON do, and /v2 lists the extension', async () => {
    const json = await postJson('/v2/models/iris-dense/infer', { inputs: [irisInput({ data: IRIS.flat() })] });
    const { body, headers } = binaryRequest({ inputs: [irisInput({ parameters: { binary_data_size: 32 } })] }, new Float32Array(IRIS.flat()));
    const binary = await post('/v2/models/iris-dense/infer', body, headers);
    expect(binary.status).toBe(200);
    expect(binary.headers.get('content-type')).toMatch(/application\/json/);
    expect(await binary.json()).toEqual(await json.json());
    expect(((await (await app.request('/v2')).json()) as { extensions: string[] }).extensions).toContain('binary_tensor_data');
  });

  it('reads every numeric datatype as binary as it reads it as JSON (FP64, FP16, UINT8, INT16, INT64, BOOL)', async () => {
    const values = [1, 0, 3, 2, 0, 1, 1, 0];
    const cases: [string, ArrayBufferView][] = [
      ['FP64', new Float64Array(values)],
      ['FP16', new Uint16Array(values.map((v) => [0, 0x3c00, 0x4000, 0x4200][v]!))], // 0, 1, 2, 3 as IEEE half
      ['UINT8', new Uint8Array(values)],
      ['INT16', new Int16Array(values)],
      ['INT64', new BigInt64Array(values.map(BigInt))],
    ];
    const reference = await (await postJson('/v2/models/iris-dense/infer', { inputs: [irisInput({ data: values })] })).json();
    for (const [datatype, tensor] of cases) {
      const { body, headers } = binaryRequest({ inputs: [irisInput({ datatype, parameters: { binary_data_size: tensor.byteLength } })] }, tensor);
      const response = await post('/v2/models/iris-dense/infer', body, headers);
      expect([datatype, response.status]).toEqual([datatype, 200]);
      expect(await response.json()).toEqual(reference);
    }
    const bools = values.map((v) => v % 2);
    const boolJson = await (await postJson('/v2/models/iris-dense/infer', { inputs: [irisInput({ datatype: 'BOOL', data: bools.map(Boolean) })] })).json();
    const { body, headers } = binaryRequest({ inputs: [irisInput({ datatype: 'BOOL', parameters: { binary_data_size: 8 } })] }, new Uint8Array(bools));
    expect(await (await post('/v2/models/iris-dense/infer', body, headers)).json()).toEqual(boolJson);
  });

  it('answers in binary when asked (binary_data_output, or per output binary_data, which wins) and the bytes are the JSON numbers', async () => {
    const request = { id: 'r1', inputs: [irisInput({ data: IRIS })] };
    const json = (await (await postJson('/v2/models/iris-dense/infer', request)).json()) as { outputs: { name: string; data: number[]; shape: number[] }[] };
    const answer = await postJson('/v2/models/iris-dense/infer', { ...request, parameters: { binary_data_output: true } });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/octet-stream');
    const { json: head, values } = await readBinaryResponse(answer);
    expect(head).toMatchObject({ model_name: 'iris-dense', model_version: '1', id: 'r1' });
    expect(head.outputs).toEqual([{ name: json.outputs[0]!.name, shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: 24 } }]);
    expect(values.get(json.outputs[0]!.name)).toEqual(json.outputs[0]!.data);
    const name = json.outputs[0]!.name;
    const perOutput = await postJson('/v2/models/iris-dense/infer', { ...request, outputs: [{ name, parameters: { binary_data: true } }] });
    expect(perOutput.headers.get(INFERENCE_HEADER)).not.toBeNull();
    expect((await readBinaryResponse(perOutput)).values.get(name)).toEqual(json.outputs[0]!.data);
    const overridden = await postJson('/v2/models/iris-dense/infer', { ...request, parameters: { binary_data_output: true }, outputs: [{ name, parameters: { binary_data: false } }] });
    expect(overridden.headers.get(INFERENCE_HEADER)).toBeNull();
    expect(await overridden.json()).toEqual(json);
  });

  it('cuts binary inputs in request order and mixes them with JSON data', async () => {
    const a = [0.5, -1];
    const b = [2, 0.25, -3];
    const reference = await (
      await postJson('/v2/models/two-inputs/infer', {
        inputs: [
          { name: 'a', shape: [1, 2], datatype: 'FP32', data: a },
          { name: 'b', shape: [1, 3], datatype: 'FP32', data: b },
        ],
      })
    ).json();
    // b first in the request, so its bytes come first
    const both = binaryRequest(
      {
        inputs: [
          { name: 'b', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } },
          { name: 'a', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: 8 } },
        ],
      },
      new Float32Array(b),
      new Float32Array(a),
    );
    expect(await (await post('/v2/models/two-inputs/infer', both.body, both.headers)).json()).toEqual(reference);
    const mixed = binaryRequest(
      {
        inputs: [
          { name: 'a', shape: [1, 2], datatype: 'FP32', data: a },
          { name: 'b', shape: [1, 3], datatype: 'FP64', parameters: { binary_data_size: 24 } },
        ],
      },
      new Float64Array(b),
    );
    expect(await (await post('/v2/models/two-inputs/infer', mixed.body, mixed.headers)).json()).toEqual(reference);
  });

  it.skipIf(!hasMobileNet)('MobileNetV2 224x224x3: binary in and binary out give the JSON answer (skipped without the fixture)', async () => {
    const pixels = fixedValues(224 * 224 * 3, 3).map((v) => (v + 1) / 2);
    const input = { name: 'input_1', shape: [1, 224, 224, 3], datatype: 'FP32' };
    const model = (await (await app.request('/v2/models/mobilenet')).json()) as { inputs: { name: string }[] };
    input.name = model.inputs[0]!.name;
    const json = (await (await postJson('/v2/models/mobilenet/infer', { inputs: [{ ...input, data: Array.from(pixels) }] })).json()) as { outputs: { name: string; data: number[] }[] };
    const { body, headers } = binaryRequest({ inputs: [{ ...input, parameters: { binary_data_size: pixels.byteLength } }], parameters: { binary_data_output: true } }, pixels);
    const answer = await post('/v2/models/mobilenet/infer', body, headers);
    expect(answer.status).toBe(200);
    const { values } = await readBinaryResponse(answer);
    expect(values.get(json.outputs[0]!.name)).toEqual(json.outputs[0]!.data);
  });
});

describe('TF Serving raw application/octet-stream :predict', () => {
  const raw = (path: string, bytes: ArrayBufferView) => post(path, new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength), { 'content-type': 'application/octet-stream' });

  it('float32 bytes answer what instances do, the batch read from the byte count or given by ?shape=', async () => {
    const instances = await (await postJson('/v1/models/iris-dense:predict', { instances: IRIS })).json();
    const response = await raw('/v1/models/iris-dense:predict', new Float32Array(IRIS.flat()));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(instances);
    expect(await (await raw('/v1/models/iris-dense/versions/1:predict?shape=2,4', new Float32Array(IRIS.flat()))).json()).toEqual(instances);
  });

  it('?dtype=uint8 and ?dtype=int32 carry integer pixels: the same answer as JSON integers', async () => {
    const pixels = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256);
    const rows = Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [pixels[y * 28 + x]!]));
    const reference = await (await postJson('/v1/models/mnist-cnn:predict', { instances: [rows] })).json();
    expect(await (await raw('/v1/models/mnist-cnn:predict?dtype=uint8', pixels)).json()).toEqual(reference);
    expect(await (await raw('/v1/models/mnist-cnn:predict?dtype=int32', Int32Array.from(pixels))).json()).toEqual(reference);
  });
});

describe('Server-Timing', () => {
  it('reports read and parse before load, decode, infer, encode on JSON, binary and raw predictions', async () => {
    const answers = [
      await postJson('/v1/models/iris-dense:predict', { instances: IRIS }),
      await post('/v1/models/iris-dense:predict', new Uint8Array(new Float32Array(IRIS.flat()).buffer), { 'content-type': 'application/octet-stream' }),
      await postJson('/v2/models/iris-dense/infer', { inputs: [irisInput({ data: IRIS })], parameters: { binary_data_output: true } }),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.headers.get('server-timing')).toMatch(SERVER_TIMING);
    }
  });
});

describe('base64 on Node', () => {
  it('decodes through Buffer and still refuses what the JS decoder refuses', () => {
    const bytes = Uint8Array.from({ length: 3000 }, (_, i) => (i * 31) & 255);
    const text = encodeBase64(bytes);
    expect(text).toBe(Buffer.from(bytes).toString('base64'));
    expect(decodeBase64(text, 'f')).toEqual(bytes);
    // Buffer skips these or reads them loosely; each must still be a 400 naming the character.
    for (const [bad, what] of [
      ['AAAŁ', 'Ł'],
      ['AB$C', '$'],
      ['AA-_', '-'],
      ['AA==AA==', '='],
    ] as const) {
      expect(() => decodeBase64(bad, 'x.b64')).toThrow(`x.b64: b64 is not valid base64 (character ${JSON.stringify(what)}`);
    }
    expect(() => decodeBase64('AAAAA', 'x')).toThrow(/truncated/);
    expect(decodeBase64('AA AA\nAA==', 'x')).toEqual(new Uint8Array(4));
  });
});
