// Open Inference Protocol (KServe v2) REST:
//   GET  /v2/health/live, /v2/health/ready, /v2 (server metadata)
//   GET  /v2/models/{name}[/versions/{v}]          model metadata
//   GET  /v2/models/{name}[/versions/{v}]/ready    loads the model; 200 when it can serve
//   POST /v2/models/{name}[/versions/{v}]/infer    inputs [{name, shape, datatype, data}] → outputs;
//                                                  binary tensor data extension in routes/v2-binary.ts
//   POST /v2/repository/index                      every published version (Triton's repository index):
//                                                  [{name, version, state: READY | UNAVAILABLE, reason}];
//                                                  body {"ready": true} keeps the loaded ones
import { Hono, type Context } from 'hono';
import { endTime, setMetric, startTime, timing } from 'hono/timing';
import { asTensorDtype, checkShape, decodeValues, elementCount, v2Datatype } from '../../shared/codecs.ts';
import type { TensorSignature } from '../../shared/schemas/edgeflow-json.ts';
import { V2InferRequest } from '../../shared/schemas/requests.ts';
import { describeZodError } from '../../shared/errors.ts';
import { parseVersion } from '../../shared/names.ts';
import { parseJsonBody, readCappedBody, timed } from '../body.ts';
import { listModels } from '../../shared/bucket/versions.ts';
import { checkBatch, ElementBudget, type Limits } from '../limits.ts';
import { runModel, type InputTensor } from '../inference.ts';
import type { AppEnv } from '../app-env.ts';
import { badRequest, notFound } from '../../shared/errors.ts';
import type { VersionSelector } from '../runtime/registry.ts';
import { SERVER_NAME, SERVER_VERSION } from '../version.ts';
import { BINARY_EXTENSION, binaryInputs, binaryOutputChoice, encodeInferResponse, INFERENCE_HEADER, splitInferBody } from './v2-binary.ts';
import { binaryWidth, decodeTensorBytes } from '../../shared/tensor-bytes.ts';

function selector(c: Context<AppEnv>): VersionSelector {
  const version = c.req.param('version');
  if (version === undefined) return {};
  const number = parseVersion(version);
  if (number === null) throw notFound(`model ${c.req.param('name')} has no version ${JSON.stringify(version)} (versions are positive integers)`);
  return { version: number };
}

export function v2Routes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/v2/health/live', (c) => c.json({ live: true }));

  app.get('/v2/health/ready', async (c) => {
    const runtime = c.get('runtime');
    try {
      const backend = await runtime.ready();
      return c.json({ ready: true, backend });
    } catch (error) {
      return c.json({ ready: false, error: (error as Error).message, backend: runtime.backendStatus() }, 503);
    }
  });

  app.get('/v2', (c) => {
    const runtime = c.get('runtime');
    return c.json({
      name: SERVER_NAME,
      version: SERVER_VERSION,
      extensions: [BINARY_EXTENSION],
      edgeflow: { platform: c.get('platform'), store: runtime.store.description, backend: runtime.backendStatus(), models: runtime.stats() },
    });
  });

  app.post('/v2/repository/index', async (c) => {
    const runtime = c.get('runtime');
    const bytes = await readCappedBody(c, 4096);
    const body = bytes.byteLength ? parseJsonBody(bytes) : {};
    const ready = (body as { ready?: unknown } | null)?.ready;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || (ready !== undefined && typeof ready !== 'boolean'))
      throw badRequest('body: {"ready": true | false} or nothing is expected');
    const rows = (await listModels(runtime.store)).flatMap(({ name, versions }) =>
      versions.map((version) =>
        runtime.isLoaded(name, version)
          ? { name, version: String(version), state: 'READY', reason: '' }
          : { name, version: String(version), state: 'UNAVAILABLE', reason: 'not loaded: loads on its first request' },
      ),
    );
    return c.json(ready ? rows.filter((row) => row.state === 'READY') : rows);
  });

  const metadata = async (c: Context<AppEnv>) => {
    const runtime = c.get('runtime');
    const name = c.req.param('name')!;
    const resolved = await runtime.resolve(name, selector(c));
    const { inputs, outputs } = resolved.edgeflow.signature;
    const tensor = (s: { name: string; dtype: string; shape: number[] }) => ({ name: s.name, datatype: v2Datatype(s.dtype), shape: s.shape });
    return c.json({
      name,
      versions: resolved.index.versions.map((v) => String(v.version)),
      platform: resolved.edgeflow.format === 'graph-model' ? 'tensorflowjs_graph' : 'tensorflowjs_layers',
      inputs: inputs.map(tensor),
      outputs: outputs.map(tensor),
      parameters: {
        version: String(resolved.version),
        loaded: runtime.isLoaded(name, resolved.version),
        simd: runtime.backendStatus().simd,
        backend: runtime.backendStatus(),
        ...(resolved.edgeflow.labels ? { labels: resolved.edgeflow.labels } : {}),
        ...(resolved.edgeflow.image ? { image: resolved.edgeflow.image } : {}),
      },
    });
  };
  app.get('/v2/models/:name', metadata);
  app.get('/v2/models/:name/versions/:version', metadata);

  const ready = async (c: Context<AppEnv>) => {
    const runtime = c.get('runtime');
    const acquired = await runtime.acquire(c.req.param('name')!, selector(c), 'ready');
    acquired.release();
    return c.json({ name: acquired.resolved.name, version: String(acquired.resolved.version), ready: true });
  };
  app.get('/v2/models/:name/ready', ready);
  app.get('/v2/models/:name/versions/:version/ready', ready);

  const infer = async (c: Context<AppEnv>) => {
    const runtime = c.get('runtime');
    const limits = c.get('limits');
    const [{ request, binary }, acquired] = await runtime.acquireWhile(c.req.param('name')!, selector(c), async () => {
      const body = await timed(c, 'read', () => readCappedBody(c, limits.maxBodyBytes));
      return timed(c, 'parse', () => {
        const { json, binary } = splitInferBody(body, c.req.header(INFERENCE_HEADER));
        const parsed = V2InferRequest.safeParse(parseJsonBody(json));
        if (!parsed.success) throw badRequest(describeZodError(parsed.error));
        return { request: parsed.data, binary: binaryInputs(parsed.data, binary, limits.maxBodyBytes) };
      });
    });
    try {
      setMetric(c, 'load', acquired.loadMs, undefined, 2);
      startTime(c, 'decode');
      const model = acquired.entry.model;
      const inputs = decodeInputs(request, binary, model.inputs, limits);
      const wanted = selectOutputs(
        request,
        model.outputs.map((o) => o.name),
      );
      endTime(c, 'decode', 2);
      startTime(c, 'infer');
      const outputs = await runModel(model, inputs);
      endTime(c, 'infer', 2);
      startTime(c, 'encode');
      const head = { model_name: acquired.resolved.name, model_version: String(acquired.resolved.version), ...(request.id !== undefined ? { id: request.id } : {}) };
      const selected = outputs.filter((o) => wanted.has(o.name));
      const { body, headers } = encodeInferResponse(head, selected, binaryOutputChoice(request));
      endTime(c, 'encode', 2);
      return c.body(body, 200, headers);
    } finally {
      acquired.release();
    }
  };
  // Server-Timing of a prediction: read, parse, load, decode, infer, encode (ms), in that order.
  const serverTiming = timing({ total: false });
  app.post('/v2/models/:name/infer', serverTiming, infer);
  app.post('/v2/models/:name/versions/:version/infer', serverTiming, infer);

  return app;
}

function decodeInputs(request: V2InferRequest, binary: (Uint8Array | undefined)[], signature: TensorSignature[], limits: Limits): InputTensor[] {
  const byName = new Map(request.inputs.map((input, i) => [input.name, { input, i }]));
  request.inputs.forEach((input, i) => {
    if (!signature.some((s) => s.name === input.name)) throw badRequest(`inputs[${i}].name: the model has no input ${JSON.stringify(input.name)} (inputs: ${signature.map((s) => s.name).join(', ')})`);
    if (request.inputs.findIndex((other) => other.name === input.name) !== i) throw badRequest(`inputs[${i}].name: input ${input.name} is given twice`);
  });
  const budget = new ElementBudget(limits);
  return signature.map((s) => {
    const found = byName.get(s.name);
    if (!found) throw badRequest(`inputs: the model's input ${s.name} is missing`);
    const { input, i } = found;
    const field = `inputs[${i}]`;
    const dtype = asTensorDtype(s.dtype);
    if ((input.datatype === 'BYTES') !== (dtype === 'string')) {
      throw badRequest(`${field}.datatype: ${input.datatype} does not fit the model input ${s.name} (${v2Datatype(s.dtype)})`);
    }
    checkShape(input.shape, s.shape, `${field}.shape`);
    if (input.shape.length > 0) checkBatch(input.shape[0]!, `${field}.shape`, limits);
    const count = elementCount(input.shape);
    budget.take(count, `${field}.shape`);
    const bytes = binary[i];
    if (bytes === undefined) return { shape: input.shape, dtype, values: decodeValues(input.data, input.shape, `${field}.data`, { dtype, datatype: input.datatype, allowFlat: true }) };
    const width = binaryWidth(input.datatype, `${field}.datatype`);
    if (bytes.byteLength !== count * width) {
      throw badRequest(`${field}.parameters.binary_data_size: ${bytes.byteLength} bytes, but shape [${input.shape.join(', ')}] of ${input.datatype} is ${count * width} bytes (${count} x ${width})`);
    }
    return { shape: input.shape, dtype, values: decodeTensorBytes(bytes, input.datatype, dtype, `${field} (binary data)`) };
  });
}

function selectOutputs(request: V2InferRequest, names: string[]): Set<string> {
  if (!request.outputs) return new Set(names);
  request.outputs.forEach((o, i) => {
    if (!names.includes(o.name)) throw badRequest(`outputs[${i}].name: the model has no output ${JSON.stringify(o.name)} (outputs: ${names.join(', ')})`);
  });
  return new Set(request.outputs.map((o) => o.name));
}
