// TF Serving REST API v1:
//   GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
//   GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature (from edgeflow.json)
//   POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    instances → predictions, inputs → outputs;
//                                                                a raw octet-stream tensor → predictions (tfserving-raw.ts)
//   POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   image(s) → [label, score] lists (routes/classify.ts)
//   POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress    image(s) → values
// The `:predict` suffix is not a Hono route parameter, so paths are parsed here.
import { Hono } from 'hono';
import { endTime, setMetric, startTime, timing } from 'hono/timing';
import { tfServingDtype } from '../../shared/codecs.ts';
import { parseVersion } from '../../shared/names.ts';
import { TfServingPredictRequest } from '../../shared/schemas/requests.ts';
import { describeZodError } from '../../shared/errors.ts';
import type { TensorSignature } from '../../shared/schemas/edgeflow-json.ts';
import { mediaType, parseJsonBody, readCappedBody, timed } from '../body.ts';
import { runModel } from '../inference.ts';
import type { AppEnv } from '../app-env.ts';
import { badRequest, notFound } from '../../shared/errors.ts';
import type { VersionSelector } from '../runtime/registry.ts';
import { classifyOrRegress } from './classify.ts';
import { decodeColumns, decodeInstances, encodeOutputs, encodePredictions } from './tfserving-codec.ts';
import { decodeRawPredict, RAW_TENSOR_TYPE } from './tfserving-raw.ts';

interface ParsedPath {
  name: string;
  selector: VersionSelector;
  action: 'status' | 'metadata' | 'predict' | 'classify' | 'regress';
}

const PATH = /^\/v1\/models\/([^/:]+)(?:\/versions\/([^/:]+)|\/labels\/([^/:]+))?(\/metadata|:[a-zA-Z]+)?$/;

function parsePath(path: string): ParsedPath {
  const match = PATH.exec(path);
  if (!match) throw notFound(`no route ${path}: use /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata|:predict]`);
  const [, name, version, label, suffix] = match;
  const selector: VersionSelector = {};
  if (version !== undefined) {
    const number = parseVersion(version);
    if (number === null) throw notFound(`model ${name} has no version ${JSON.stringify(version)} (versions are positive integers)`);
    selector.version = number;
  }
  if (label !== undefined) selector.label = label;
  if (suffix === undefined) return { name: name!, selector, action: 'status' };
  if (suffix === '/metadata') return { name: name!, selector, action: 'metadata' };
  if (suffix === ':predict') return { name: name!, selector, action: 'predict' };
  if (suffix === ':classify') return { name: name!, selector, action: 'classify' };
  if (suffix === ':regress') return { name: name!, selector, action: 'regress' };
  throw notFound(`no route ${path}: unknown method ${suffix}`);
}

function tensorInfo(signature: TensorSignature) {
  return {
    dtype: tfServingDtype(signature.dtype),
    tensor_shape: { dim: signature.shape.map((size) => ({ size: String(size), name: '' })), unknown_rank: false },
    name: signature.name,
  };
}

export function tfServingRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Server-Timing of a prediction: read, parse, load, decode, infer, encode (ms), in that order.
  const serverTiming = timing({ total: false });

  app.get('/v1/models/*', async (c) => {
    const runtime = c.get('runtime');
    const { name, selector, action } = parsePath(decodeURIComponent(c.req.path));
    if (action === 'predict' || action === 'classify' || action === 'regress') return c.json({ error: `${action} needs POST` }, 405);
    const resolved = await runtime.resolve(name, selector);
    if (action === 'metadata') {
      const { inputs, outputs } = resolved.edgeflow.signature;
      return c.json({
        model_spec: { name, signature_name: '', version: String(resolved.version) },
        metadata: {
          signature_def: {
            signature_def: {
              serving_default: {
                inputs: Object.fromEntries(inputs.map((s) => [s.name, tensorInfo(s)])),
                outputs: Object.fromEntries(outputs.map((s) => [s.name, tensorInfo(s)])),
                method_name: 'tensorflow/serving/predict',
              },
            },
          },
        },
        edgeflow: {
          format: resolved.edgeflow.format,
          quantization: resolved.edgeflow.quantization.spec,
          backend: runtime.backendStatus(),
          labels: resolved.edgeflow.labels ?? null,
          image: resolved.edgeflow.image ?? null,
        },
      });
    }
    // Status: every published version for /v1/models/{name}; only the selected one otherwise.
    const versions = selector.version !== undefined || selector.label !== undefined ? [resolved.version] : resolved.index.versions.map((v) => v.version).reverse();
    return c.json({
      model_version_status: versions.map((version) => {
        const { state, error } = runtime.versionState(name, version);
        return {
          version: String(version),
          state: state === 'FAILED' ? 'END' : state,
          status: { error_code: state === 'FAILED' ? 'UNKNOWN' : 'OK', error_message: error ?? '' },
        };
      }),
    });
  });

  app.post('/v1/models/*', serverTiming, async (c) => {
    const runtime = c.get('runtime');
    const limits = c.get('limits');
    const { name, selector, action } = parsePath(decodeURIComponent(c.req.path));
    if (action === 'classify' || action === 'regress') return classifyOrRegress(c, name, selector, action);
    if (action !== 'predict') return c.json({ error: `${action} needs GET` }, 405);
    const raw = mediaType(c) === RAW_TENSOR_TYPE;
    const [request, acquired] = await runtime.acquireWhile(name, selector, async () => {
      const body = await timed(c, 'read', () => readCappedBody(c, limits.maxBodyBytes));
      return timed(c, 'parse', () => {
        if (raw) return { raw: body, json: undefined };
        const parsed = TfServingPredictRequest.safeParse(parseJsonBody(body));
        if (!parsed.success) throw badRequest(describeZodError(parsed.error));
        if (parsed.data.signature_name !== undefined && parsed.data.signature_name !== 'serving_default' && parsed.data.signature_name !== '') {
          throw badRequest(`signature_name: unknown signature ${JSON.stringify(parsed.data.signature_name)} (the model has serving_default)`);
        }
        return { raw: undefined, json: parsed.data };
      });
    });
    try {
      setMetric(c, 'load', acquired.loadMs, undefined, 2);
      startTime(c, 'decode');
      const signature = acquired.entry.model.inputs;
      const instances = request.json?.instances;
      const inputs = request.raw
        ? decodeRawPredict(request.raw, (key) => c.req.query(key), signature, limits)
        : instances
          ? decodeInstances(instances, signature, limits)
          : decodeColumns(request.json?.inputs, signature, limits);
      endTime(c, 'decode', 2);
      startTime(c, 'infer');
      const outputs = await runModel(acquired.entry.model, inputs);
      endTime(c, 'infer', 2);
      startTime(c, 'encode');
      const rows = request.raw ? inputs[0]!.shape[0]! : instances?.length;
      const text = JSON.stringify(rows !== undefined ? { predictions: encodePredictions(outputs, rows) } : { outputs: encodeOutputs(outputs) });
      endTime(c, 'encode', 2);
      return c.body(text, 200, { 'Content-Type': 'application/json' });
    } finally {
      acquired.release();
    }
  });

  return app;
}
