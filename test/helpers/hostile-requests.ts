// A generated table of hostile HTTP requests (bad methods, paths, escapes, headers, content
// types, bodies, v2 datatypes, b64, batch limits, binary tensor bodies, labels/versions, admin tokens), each with the
// status and the message it must get. Run against the Node app and the Worker in workerd by
// test/functions/hostile-http.test.ts and test/e2e/workerd-hostile.test.ts. Expects the demo
// models (scripts/demo-models.ts): iris-dense (4 → 3, labels) and mnist-cnn (28x28x1 → 10).

import { binaryRequest, INFERENCE_HEADER } from './v2-binary.ts';

export const HOSTILE_ADMIN_TOKEN = 'hostile-suite-admin-token-0123456789';
/** Largest error body any hostile request may get back. */
export const MAX_ERROR_BODY_BYTES = 2048;
/** The body limit the suites serve with (MAX_BODY_BYTES), small so oversize bodies stay cheap. */
export const HOSTILE_MAX_BODY_BYTES = 256 * 1024;

export interface HostileCase {
  kind: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  /** Accepted statuses (never 500). */
  status: number[];
  /** The error message must match: it names the problem. */
  error: RegExp;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const PREDICT = '/v1/models/iris-dense:predict';
const INFER = '/v2/models/iris-dense/infer';
const ROW = [5.1, 3.5, 1.4, 0.2];
const AUTH = { authorization: `Bearer ${HOSTILE_ADMIN_TOKEN}` };

const post = (kind: string, path: string, body: string | Uint8Array<ArrayBuffer> | undefined, status: number[], error: RegExp, headers: Record<string, string> = JSON_TYPE): HostileCase => ({
  kind,
  method: 'POST',
  path,
  headers,
  ...(body === undefined ? {} : { body }),
  status,
  error,
});

function methods(): HostileCase[] {
  const out: HostileCase[] = [];
  for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    for (const path of [PREDICT, INFER, '/v2/health/live', '/v2/models/iris-dense', '/v1/models/iris-dense/metadata']) {
      out.push({ kind: `method ${method} ${path}`, method, path, headers: JSON_TYPE, status: [404, 405], error: /no route|not allowed/ });
    }
  }
  out.push({ kind: 'GET on :predict', method: 'GET', path: PREDICT, status: [404, 405], error: /no route|unknown method|:predict|POST/ });
  out.push({ kind: 'GET on /infer', method: 'GET', path: INFER, status: [404, 405], error: /no route/ });
  out.push(post('POST on metadata', '/v1/models/iris-dense/metadata', '{}', [404, 405], /no route|metadata|unknown method/));
  out.push(post('POST on v2 health', '/v2/health/live', '{}', [404, 405], /no route/));
  return out;
}

function paths(): HostileCase[] {
  const body = JSON.stringify({ instances: [ROW] });
  const v2Body = JSON.stringify({ inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', data: ROW }] });
  const p = (kind: string, path: string, status: number[], error: RegExp) => post(`path ${kind}`, path, path.startsWith('/v2/') ? v2Body : body, status, error);
  const g = (kind: string, path: string, status: number[], error: RegExp): HostileCase => ({ kind: `path GET ${kind}`, method: 'GET', path, status, error });
  return [
    p('unknown model', '/v1/models/no-such-model:predict', [404], /no-such-model|not found|no model/),
    p('unknown verb', '/v1/models/iris-dense:frobnicate', [404], /frobnicate|unknown method/),
    p('empty name', '/v1/models/:predict', [400, 404], /name|no route/),
    p('version word', '/v1/models/iris-dense/versions/abc:predict', [400, 404], /version/),
    p('version zero', '/v1/models/iris-dense/versions/0:predict', [400, 404], /version/),
    p('version negative', '/v1/models/iris-dense/versions/-1:predict', [400, 404], /version/),
    p('version fraction', '/v1/models/iris-dense/versions/1.5:predict', [400, 404], /version/),
    p('version huge', '/v1/models/iris-dense/versions/99999999999999999999:predict', [400, 404], /version/),
    p('version absent', '/v1/models/iris-dense/versions/42:predict', [404], /version 42|42/),
    p('version hex', '/v1/models/iris-dense/versions/0x1:predict', [400, 404], /version/),
    p('version exponent', '/v1/models/iris-dense/versions/1e3:predict', [400, 404], /version/),
    p('label unknown', '/v1/models/iris-dense/labels/nope:predict', [404], /label|nope/),
    p('label empty', '/v1/models/iris-dense/labels/:predict', [400, 404], /label|no route/),
    p('label bad chars', '/v1/models/iris-dense/labels/a%20b:predict', [400, 404], /label/),
    p('label and version', '/v1/models/iris-dense/labels/stable/versions/1:predict', [400, 404], /no route|label/),
    p('dot-dot name', '/v1/models/..:predict', [400, 404], /name|no route/),
    p('traversal', '/v1/models/..%2F..%2Fetc%2Fpasswd:predict', [400, 404], /name|no route/),
    p('encoded slash', '/v1/models/iris%2Fdense:predict', [400, 404], /name|no route/),
    p('NUL in name', '/v1/models/iris%00dense:predict', [400, 404], /name|no route/),
    p('upper case name', '/v1/models/IRIS-DENSE:predict', [400, 404], /name|not found|IRIS-DENSE/),
    p('name of 300 chars', `/v1/models/${'a'.repeat(300)}:predict`, [400, 404], /name|not found/),
    p('path of 6000 chars', `/v1/models/${'b'.repeat(6000)}:predict`, [400, 404, 414], /name|not found|no route|model "b+/),
    p('unicode name', '/v1/models/%E2%98%83:predict', [400, 404], /name|not found/),
    p('trailing slash', '/v1/models/iris-dense/:predict', [400, 404], /name|no route/),
    p('double colon', '/v1/models/iris-dense::predict', [400, 404], /name|no route|unknown method/),
    p('v2 unknown model', '/v2/models/no-such-model/infer', [404], /no-such-model|not found/),
    p('v2 version word', '/v2/models/iris-dense/versions/x/infer', [400, 404], /version/),
    p('v2 version absent', '/v2/models/iris-dense/versions/77/infer', [404], /77|version/),
    p('v2 extra segment', '/v2/models/iris-dense/infer/more', [404], /no route/),
    g('v2 unknown model metadata', '/v2/models/no-such-model', [404], /no-such-model|not found/),
    g('v2 version absent ready', '/v2/models/iris-dense/versions/999/ready', [404], /999|version|not/),
    g('v1 unknown metadata', '/v1/models/no-such-model/metadata', [404], /no-such-model|not found/),
    g('v1 unknown suffix', '/v1/models/iris-dense/nonsense', [400, 404], /no route|name/),
    g('unknown top level', '/v3/models', [404], /no route/),
    g('bad escape v1', '/v1/models/%E0%A4%A', [400], /malformed percent-encoding/),
    g('bad escape v2', '/v2/models/%FF/ready', [400], /malformed percent-encoding/),
    g('bad escape label', '/v1/models/iris-dense/labels/%ZZ', [400], /malformed percent-encoding/),
    p('bad escape predict', '/v1/models/%C0:predict', [400], /malformed percent-encoding/),
    p('bad escape infer', '/v2/models/%E0%A4%A/infer', [400], /malformed percent-encoding/),
    p('overlong utf-8 escape', '/v2/models/%C0%AE%C0%AE/infer', [400], /malformed percent-encoding/),
  ];
}

function headers(): HostileCase[] {
  const body = JSON.stringify({ instances: [ROW] });
  const h = (kind: string, hdrs: Record<string, string>, status: number[], error: RegExp, b: string | Uint8Array<ArrayBuffer> = body) => post(`header ${kind}`, PREDICT, b, status, error, hdrs);
  return [
    h('declared length over the limit', { ...JSON_TYPE, 'content-length': String(HOSTILE_MAX_BODY_BYTES * 4) }, [400, 413], /limit|length|JSON/, 'x'.repeat(HOSTILE_MAX_BODY_BYTES * 4)),
    h('gzip declared, plain JSON sent (not JSON after all)', { ...JSON_TYPE, 'content-encoding': 'gzip' }, [400, 415], /JSON|encoding|gzip/, new Uint8Array([1, 2, 3, 4, 5])),
    h('utf-16 body', { 'content-type': 'application/json; charset=utf-16' }, [400, 415], /JSON|charset/, new Uint8Array(Buffer.from(body, 'utf16le'))),
    h('xml body', { 'content-type': 'application/xml' }, [400, 415], /JSON/, '<instances><i>1</i></instances>'),
    h('form body', { 'content-type': 'application/x-www-form-urlencoded' }, [400, 415], /JSON/, 'instances=1,2,3,4'),
    h('multipart junk', { 'content-type': 'multipart/form-data; boundary=x' }, [400, 415], /JSON/, '--x\r\ncontent-disposition: form-data; name="a"\r\n\r\n1\r\n--x--'),
    h(
      'binary body',
      { 'content-type': 'application/octet-stream' },
      [400],
      /body: 6 bytes are not a whole number of instances of hidden_input: each is \[4\] float32, 16 bytes/,
      new Uint8Array([0xff, 0xfe, 0, 1, 2, 0x80]),
    ),
    h('BOM inside the JSON', JSON_TYPE, [400], /not valid JSON/, `{"instances":\uFEFF[[1,2,3,4]]}`),
  ];
}

function predictBodies(): HostileCase[] {
  const b = (kind: string, body: string, status: number[], error: RegExp) => post(`predict ${kind}`, PREDICT, body, status, error);
  const deep = (n: number) => `{"instances":${'['.repeat(n)}1${']'.repeat(n)}}`;
  return [
    post('predict no body', PREDICT, undefined, [400], /JSON body is required|body/),
    b('empty body', '', [400], /JSON body is required/),
    b('whitespace only', '   \n\t ', [400], /not valid JSON/),
    b('null', 'null', [400], /body|expected object/),
    b('number', '42', [400], /body|expected object/),
    b('string', '"instances"', [400], /body|expected object/),
    b('array', '[[5.1,3.5,1.4,0.2]]', [400], /body|expected object/),
    b('empty object', '{}', [400], /instances|inputs/),
    b('truncated', '{"instances":[[5.1,3.5', [400], /not valid JSON/),
    b('truncated string', '{"instances":"abc', [400], /not valid JSON/),
    b('trailing garbage', '{"instances":[[1,2,3,4]]}xyz', [400], /not valid JSON/),
    b('single quotes', "{'instances':[[1,2,3,4]]}", [400], /not valid JSON/),
    b('comments', '{"instances":[[1,2,3,4]] /* hi */}', [400], /not valid JSON/),
    b('NaN literal', '{"instances":[[NaN,1,2,3]]}', [400], /not valid JSON/),
    b('Infinity literal', '{"instances":[[Infinity,1,2,3]]}', [400], /not valid JSON/),
    b('"NaN" string', '{"instances":[["NaN",1,2,3]]}', [400], /instances\[0\]|number|NaN|string/),
    b('"Infinity" string', '{"instances":[["Infinity",1,2,3]]}', [400], /instances\[0\]|number|Infinity|string/),
    b('1e400 number', '{"instances":[[1e400,1,2,3]]}', [400], /instances\[0\]|float32|finite|range/),
    b('1e39 past float32', '{"instances":[[1e39,1,2,3]]}', [400], /instances\[0\]|float32|range/),
    b('-1e39 past float32', '{"instances":[[-1e39,1,2,3]]}', [400], /instances\[0\]|float32|range/),
    b('null leaf', '{"instances":[[null,1,2,3]]}', [400], /instances\[0\]|null|number/),
    b('boolean leaf object', '{"instances":[[{},1,2,3]]}', [400], /instances\[0\]|number|object/),
    b('instances a string', '{"instances":"abc"}', [400], /instances/),
    b('instances an object', '{"instances":{"a":1}}', [400], /instances/),
    b('instances a number', '{"instances":5}', [400], /instances/),
    b('instances null', '{"instances":null}', [400], /instances/),
    b('empty instances', '{"instances":[]}', [400], /instances/),
    b('short row', '{"instances":[[1,2,3]]}', [400], /instances|shape|4/),
    b('long row', '{"instances":[[1,2,3,4,5]]}', [400], /instances|shape|4/),
    b('ragged rows', '{"instances":[[1,2,3,4],[1,2]]}', [400], /instances\[1\]|ragged|shape/),
    b('scalar instance', '{"instances":[1]}', [400], /instances|shape|rank/),
    b('too deep instance', '{"instances":[[[1,2,3,4]]]}', [400], /instances|shape|rank/),
    b('nesting 33 deep', deep(33), [400], /nested deeper than 32/),
    b('nesting 100000 deep', deep(100_000), [400], /nested deeper than 32/),
    b('64 KiB of [', '['.repeat(64 * 1024), [400], /nested deeper than 32/),
    b('nesting exactly 32 deep passes the scan (then fails the shape)', `{"instances":${'['.repeat(31)}1${']'.repeat(31)}}`, [400], /^(?!body: JSON nested).*(instances|shape|rank)/),
    b('escaped quote then brackets inside a string', `{"instances":[["\\"${'['.repeat(40)}",1,2,3]]}`, [400], /^(?!body: JSON nested).*(instances\[0\]|number|string)/),
    b('brackets inside strings do not count', `{"instances":[["${'['.repeat(100)}",1,2,3]]}`, [400], /instances\[0\]|number|string/),
    b('batch over the limit', JSON.stringify({ instances: Array.from({ length: 65 }, () => ROW) }), [400, 413], /batch of 65 exceeds the limit of 64/),
    b('both instances and inputs', JSON.stringify({ instances: [ROW], inputs: [ROW] }), [400], /instances|inputs/),
    b('inputs wrong shape', JSON.stringify({ inputs: [[1, 2]] }), [400], /inputs|shape/),
    b('inputs unknown name', JSON.stringify({ inputs: { nope: [ROW] } }), [400], /nope|input/),
    b('named instance unknown key', JSON.stringify({ instances: [{ nope: ROW }] }), [400], /nope|input/),
    b('signature_name unknown', JSON.stringify({ signature_name: 'other', instances: [ROW] }), [400, 404], /signature/),
    b('signature_name a number', JSON.stringify({ signature_name: 7, instances: [ROW] }), [400], /signature_name/),
    b('b64 garbage', '{"instances":[{"b64":"!!!!"}]}', [400], /b64/),
    b('b64 wrong length', '{"instances":[{"b64":"AAAA"}]}', [400], /b64|bytes/),
    b('b64 not a string', '{"instances":[{"b64":123}]}', [400], /b64|instances/),
    b('b64 mixed with rows', JSON.stringify({ instances: [{ b64: 'AAAAAAAAAAAAAAAAAAAAAA==' }, ROW] }), [400], /b64|mixes/),
    b('duplicate keys, last one a string', '{"instances":[[1,2,3,4]],"instances":"x"}', [400], /instances/),
    b('__proto__ key', '{"__proto__":{"instances":[[1,2,3,4]]}}', [400], /instances|inputs/),
    b('wide rows (900 columns, batch 64)', JSON.stringify({ instances: Array.from({ length: 64 }, () => Array.from({ length: 900 }, () => 1)) }), [400, 413], /shape \[64, 900\] does not match/),
    b('body over the limit (no declared length beyond it)', `{"instances":[[${'1,'.repeat(HOSTILE_MAX_BODY_BYTES / 2)}1]]}`, [413], /limit of \d+ bytes/),
  ];
}

function v2Bodies(): HostileCase[] {
  const input = (extra: Record<string, unknown>) => JSON.stringify({ inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', data: ROW, ...extra }] });
  const b = (kind: string, body: string, status: number[], error: RegExp) => post(`v2 ${kind}`, INFER, body, status, error);
  const dtypes: [string, unknown[], RegExp][] = [
    ['FP99', ROW, /datatype|FP99/],
    ['fp32 lower case', ROW, /datatype|fp32/],
    ['INT8 out of range', [300, 1, 2, 3], /INT8|range|300/],
    ['UINT8 negative', [-1, 1, 2, 3], /UINT8|range|-1/],
    ['INT32 fraction', [1.5, 1, 2, 3], /INT32|integer|1\.5/],
    ['INT64 past 2^53', [2 ** 60, 1, 2, 3], /INT64|exact|range|integer/],
    ['BOOL with 2', [2, 1, 0, 1], /BOOL|boolean|2/],
    ['FP16 past its range', [70000, 1, 2, 3], /FP16|range|70000/],
    ['BYTES for a numeric input', ['a', 'b', 'c', 'd'], /BYTES|datatype|string|FP32/],
    ['FP32 with strings', ['1', '2', '3', '4'], /number|data|string/],
    ['FP32 with "NaN"', ['NaN', 1, 2, 3], /number|data|NaN/],
  ];
  const out: HostileCase[] = dtypes.map(([kind, data, error]) => {
    const datatype = kind.split(' ')[0] === 'fp32' ? 'fp32' : kind.split(' ')[0];
    return b(`datatype ${kind}`, input({ datatype, data }), [400], error);
  });
  return [
    ...out,
    b('empty body', '', [400], /JSON body is required/),
    b('no inputs', '{}', [400], /inputs/),
    b('inputs empty', '{"inputs":[]}', [400], /inputs must list at least one tensor/),
    b('inputs an object', '{"inputs":{"a":1}}', [400], /inputs/),
    b('input not an object', '{"inputs":[5]}', [400], /inputs\[0\]|inputs/),
    b('no name', JSON.stringify({ inputs: [{ shape: [1, 4], datatype: 'FP32', data: ROW }] }), [400], /name/),
    b('no datatype', JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], data: ROW }] }), [400], /datatype/),
    b('no shape', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', data: ROW }] }), [400], /shape/),
    b('no data', JSON.stringify({ inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32' }] }), [400], /data/),
    b('unknown input name', input({ name: 'nope' }), [400], /nope|input/),
    b('duplicate input names', JSON.stringify({ inputs: [JSON.parse(input({})).inputs[0], JSON.parse(input({})).inputs[0]] }), [400], /duplicate|twice|hidden_input|input/),
    b('shape vs data length', input({ shape: [1, 5] }), [400], /shape|data|elements|5|4/),
    b('shape negative', input({ shape: [-1, 4] }), [400], /shape/),
    b('shape fractional', input({ shape: [1.5, 4] }), [400], /shape/),
    b('shape huge', input({ shape: [1e9, 4] }), [400, 413], /shape|batch|limit|elements/),
    b('shape not array', input({ shape: '1,4' }), [400], /shape/),
    b('shape rank wrong', input({ shape: [4] }), [400], /shape|rank/),
    b('batch over the limit', input({ shape: [65, 4], data: Array.from({ length: 260 }, () => 1) }), [400, 413], /batch of 65 exceeds the limit of 64/),
    b('data an object', input({ data: { a: 1 } }), [400], /data/),
    b('data a string', input({ data: 'abcd' }), [400], /data/),
    b('data null', input({ data: null }), [400], /data/),
    b('data nested wrong', input({ data: [[1, 2], [3]] }), [400], /data|shape|ragged/),
    b('data with null', input({ data: [null, 1, 2, 3] }), [400], /data|number|null/),
    b('data 1e39 FP32', input({ data: [1e39, 1, 2, 3] }), [400], /range|float32|FP32/),
    b('BYTES b64 garbage', input({ datatype: 'BYTES', data: [{ b64: '@@@' }] }), [400], /b64|BYTES|datatype/),
    b('id a number', JSON.stringify({ id: 5, ...JSON.parse(input({})) }), [400], /id/),
    b('parameters not an object', JSON.stringify({ parameters: 'x', ...JSON.parse(input({})) }), [400], /parameters/),
    b('outputs unknown', JSON.stringify({ ...JSON.parse(input({})), outputs: [{ name: 'nope' }] }), [400], /nope|output/),
    b('outputs not array', JSON.stringify({ ...JSON.parse(input({})), outputs: 'species' }), [400], /outputs/),
    b('shape with a string dimension', input({ shape: [1, '4'] }), [400], /shape/),
    b('nesting 40 deep', `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":${'['.repeat(40)}1${']'.repeat(40)}}]}`, [400], /nested deeper than 32/),
  ];
}

/** The KServe v2 binary tensor data extension and TF Serving's raw octet-stream body: every inconsistency a 400 naming it. */
function binaryBodies(): HostileCase[] {
  const f32 = (...values: number[]) => new Float32Array(values);
  const sized = (size: unknown, extra: Record<string, unknown> = {}) => ({ inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: size }, ...extra }] });
  const framed = (kind: string, json: unknown, tensors: ArrayBufferView[], error: RegExp, headers: Record<string, string> = {}) => {
    const request = binaryRequest(json, ...tensors);
    return post(`v2 binary ${kind}`, INFER, request.body, [400], error, { ...request.headers, ...headers });
  };
  const row = f32(...ROW);
  const json = new TextEncoder().encode(JSON.stringify(sized(16)));
  const withLength = (kind: string, length: string, error: RegExp) =>
    post(`v2 binary ${kind}`, INFER, new Uint8Array([...json, ...new Uint8Array(row.buffer)]), [400], error, { 'content-type': 'application/octet-stream', [INFERENCE_HEADER]: length });
  const raw = (kind: string, query: string, bytes: ArrayBufferView, error: RegExp) =>
    post(`raw predict ${kind}`, `${PREDICT}${query}`, new Uint8Array(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength), [400], error, { 'content-type': 'application/octet-stream' });
  return [
    framed('size not matching the shape', sized(12), [f32(1, 2, 3)], /inputs\[0\]\.parameters\.binary_data_size: 12 bytes, but shape \[1, 4\] of FP32 is 16 bytes/),
    framed('sizes past the data', sized(16), [f32(1, 2)], /binary_data_size: 16 bytes from byte 0 of the binary data run past its end \(8 bytes/),
    framed('bytes left after the sizes', sized(16), [f32(1, 2, 3, 4, 5)], /20 bytes follow the Inference-Header-Content-Length of JSON, but the inputs' binary_data_size add up to 16/),
    framed('binary data but no size', { inputs: [{ name: 'hidden_input', shape: [1, 4], datatype: 'FP32', data: ROW }] }, [row], /16 bytes follow .* add up to 0/),
    framed('size negative', sized(-16), [row], /binary_data_size must not be negative/),
    framed('size fractional', sized(15.5), [row], /binary_data_size: 15\.5 is not a whole number of bytes/),
    framed('size a string', sized('16'), [row], /binary_data_size must be a byte count/),
    framed('size past the body limit', sized(1e12), [row], /binary_data_size: 1000000000000 bytes exceed the body limit of \d+ bytes/),
    framed('size and data both', sized(16, { data: ROW }), [row], /give data or parameters\.binary_data_size, not both/),
    framed('BYTES as binary', sized(16, { datatype: 'BYTES' }), [row], /BYTES tensors are not taken as binary data/),
    framed('NaN in FP32', sized(16), [f32(Number.NaN, 1, 2, 3)], /inputs\[0\] \(binary data\)\[0\]: NaN is not a finite number/),
    framed('Infinity in FP32', sized(16), [f32(1, Number.POSITIVE_INFINITY, 2, 3)], /\[1\]: Infinity is not a finite number/),
    framed('BOOL byte of 2', sized(4, { datatype: 'BOOL' }), [new Uint8Array([1, 0, 2, 1])], /\[2\]: BOOL values are true\/false \(or 0\/1\), got 2/),
    framed('INT64 past 2^53', sized(32, { datatype: 'INT64' }), [new BigInt64Array([2n ** 60n, 1n, 2n, 3n])], /\[0\]: \d+ is out of range for INT64/),
    framed('FP16 infinity', sized(8, { datatype: 'FP16' }), [new Uint16Array([0x7c00, 0, 0, 0])], /\[0\]: Infinity is not a finite number/),
    framed('binary_data_output not a boolean', { ...sized(16), parameters: { binary_data_output: 'yes' } }, [row], /binary_data_output must be true or false/),
    framed('output binary_data not a boolean', { ...sized(16), outputs: [{ name: 'species', parameters: { binary_data: 1 } }] }, [row], /binary_data must be true or false/),
    post('v2 binary size without the header', INFER, JSON.stringify(sized(16)), [400], /binary data needs the Inference-Header-Content-Length header/),
    withLength('header past the body', '5000', /Inference-Header-Content-Length: 5000 bytes is past the end of the body \(\d+ bytes\)/),
    withLength('header negative', '-5', /Inference-Header-Content-Length: expected the JSON request's length in bytes/),
    withLength('header not a number', 'abc', /Inference-Header-Content-Length: expected .* got "abc"/),
    withLength('header huge', '99999999999999999999', /Inference-Header-Content-Length: expected .* got "99999999999999999999"/),
    withLength('header zero', '0', /Inference-Header-Content-Length: 0: the body must start with the JSON request/),
    withLength('header short of the JSON', '10', /not valid JSON/),
    withLength('header past the JSON', String(json.byteLength + 4), /not valid JSON/),
    raw('empty body', '', new Uint8Array(0), /body: empty; a raw application\/octet-stream body holds the input's float32 values/),
    raw('dtype unknown', '?dtype=float64', row, /dtype: "float64" is not one of float32, int32, uint8/),
    raw('shape malformed', '?shape=1,x', row, /shape: expected comma-separated dimensions like 1,224,224,3, got "1,x"/),
    raw('shape not the signature', '?shape=1,5', f32(1, 2, 3, 4, 5), /shape: shape \[1, 5\] does not match the model's \[any, 4\]/),
    raw('shape not the byte count', '?shape=2,4', row, /body: 16 bytes, but shape \[2, 4\] of float32 is 32 bytes/),
    raw('shape with a zero', '?shape=0,4', row, /shape \[0, 4\] has a dimension of 0/),
    raw('NaN', '', f32(1, Number.NaN, 2, 3), /body\[1\]: NaN is not a finite number/),
    raw('uint8 not whole instances', '?dtype=uint8', new Uint8Array(6), /body: 6 bytes are not a whole number of instances of hidden_input: each is \[4\] uint8, 4 bytes/),
    raw('int32 not whole instances', '?dtype=int32', new Int32Array(5), /body: 20 bytes are not a whole number of instances/),
    raw('batch over the limit', '', new Float32Array(65 * 4), /batch of 65 exceeds the limit of 64/),
  ];
}

function admin(): HostileCase[] {
  const out: HostileCase[] = [];
  const routes: [string, string, string | undefined][] = [
    ['GET', '/admin/models', undefined],
    ['GET', '/admin/models/iris-dense', undefined],
    ['PUT', '/admin/models/iris-dense/labels/stable', '{"version":1}'],
    ['DELETE', '/admin/models/iris-dense/labels/stable', undefined],
    ['DELETE', '/admin/models/iris-dense/versions/1', undefined],
    ['POST', '/admin/models/x/uploads', 'PK\u0003\u0004'],
    ['GET', '/admin/uploads/abc', undefined],
  ];
  const creds: [string, Record<string, string>][] = [
    ['no token', {}],
    ['wrong token', { authorization: 'Bearer wrong-token-wrong-token-wrong' }],
    ['empty bearer', { authorization: 'Bearer ' }],
    ['basic auth', { authorization: `Basic ${btoa(`admin:${HOSTILE_ADMIN_TOKEN}`)}` }],
    ['token as query', {}],
  ];
  for (const [method, path, body] of routes) {
    for (const [cred, hdrs] of creds) {
      const url = cred === 'token as query' ? `${path}?token=${HOSTILE_ADMIN_TOKEN}` : path;
      out.push({
        kind: `admin ${cred} ${method} ${path}`,
        method,
        path: url,
        headers: { ...JSON_TYPE, ...hdrs },
        ...(body ? { body } : {}),
        status: [401, 403],
        error: /token|unauthori[sz]ed|authorization|bearer/i,
      });
    }
  }
  const a = (
    kind: string,
    method: string,
    path: string,
    body: string | Uint8Array<ArrayBuffer> | undefined,
    status: number[],
    error: RegExp,
    hdrs: Record<string, string> = JSON_TYPE,
  ): HostileCase => ({
    kind: `admin ${kind}`,
    method,
    path,
    headers: { ...hdrs, ...AUTH },
    ...(body === undefined ? {} : { body }),
    status,
    error,
  });
  out.push(
    a('label: body not JSON', 'PUT', '/admin/models/iris-dense/labels/stable', 'version=1', [400], /not valid JSON/),
    a('label: no version', 'PUT', '/admin/models/iris-dense/labels/stable', '{}', [400], /version/),
    a('label: version a word', 'PUT', '/admin/models/iris-dense/labels/stable', '{"version":"abc"}', [400], /version/),
    a('label: version absent', 'PUT', '/admin/models/iris-dense/labels/stable', '{"version":999}', [400, 404, 409], /999|version/),
    a('label: bad label name', 'PUT', '/admin/models/iris-dense/labels/a%20b', '{"version":1}', [400], /label/),
    a('label: body over 4 KiB', 'PUT', '/admin/models/iris-dense/labels/stable', `{"version":1,"pad":"${'x'.repeat(5000)}"}`, [413], /limit of 4096 bytes/),
    a('label: deep body', 'PUT', '/admin/models/iris-dense/labels/stable', `{"version":${'['.repeat(50)}${']'.repeat(50)}}`, [400], /nested deeper than 32/),
    a('label: unknown model', 'PUT', '/admin/models/no-such-model/labels/stable', '{"version":1}', [404], /no-such-model|not found/),
    a('delete label absent', 'DELETE', '/admin/models/iris-dense/labels/never-set', undefined, [404], /never-set|label/),
    a('delete version of unknown model', 'DELETE', '/admin/models/no-such-model/versions/1', undefined, [404], /no-such-model|not found/),
    a('delete version word', 'DELETE', '/admin/models/iris-dense/versions/abc', undefined, [400], /version/),
    a('describe bad name', 'GET', '/admin/models/..', undefined, [400, 404], /name|no admin route|no route/),
    a('upload status bad id', 'GET', '/admin/uploads/..%2F..', undefined, [400, 404], /upload|id/),
    a('upload status id of the wrong form', 'GET', '/admin/uploads/00000000-0000-4000-8000-000000000000', undefined, [400, 404], /invalid upload id/),
    a('upload status unknown id', 'GET', '/admin/uploads/20200101T000000Z-0000000000000000', undefined, [404], /20200101T000000Z-0000000000000000|not found/),
    a('upload without body', 'POST', '/admin/models/hostile-upload/uploads', undefined, [400], /upload/, { 'content-type': 'application/zip' }),
    a('upload bad model name', 'POST', '/admin/models/Bad%20Name/uploads', 'PK', [400], /name/, { 'content-type': 'application/zip' }),
    a('upload declared length over the limit', 'POST', '/admin/models/hostile-upload/uploads', new Uint8Array(16), [400, 413], /limit|bytes/, {
      'content-type': 'application/zip',
      'content-length': String(10 * 1024 * 1024 * 1024),
    }),
    a('unknown admin route', 'GET', '/admin/nothing-here', undefined, [404], /no admin route/),
  );
  return out;
}

/** Every hostile request, each kind once. */
export function hostileRequests(): HostileCase[] {
  return [...methods(), ...paths(), ...headers(), ...predictBodies(), ...v2Bodies(), ...binaryBodies(), ...admin()];
}

/** A good request (and what it must answer) for after the hostile run. */
export const GOOD_PREDICT = { path: PREDICT, body: JSON.stringify({ instances: [ROW, [6.7, 3.1, 5.6, 2.4]] }) };

/** Throws (with the request and the answer) unless the answer is what the case expects. */
export function checkHostileAnswer(c: HostileCase, status: number, text: string): void {
  const problems: string[] = [];
  if (!c.status.includes(status)) problems.push(`status ${status}, expected ${c.status.join(' or ')}`);
  if (text.length > MAX_ERROR_BODY_BYTES) problems.push(`body of ${text.length} chars`);
  let error: unknown;
  try {
    error = (JSON.parse(text) as { error?: unknown }).error;
  } catch {
    problems.push('body is not JSON');
  }
  if (typeof error !== 'string') problems.push('no "error" string');
  else {
    if (!c.error.test(error)) problems.push(`message does not match ${c.error}`);
    if (/\bat .+\.(ts|js):\d+|TypeError|ReferenceError/.test(error)) problems.push('message holds a stack trace');
  }
  if (problems.length > 0) throw new Error(`${c.kind}: ${problems.join('; ')}\n  ${c.method} ${c.path.slice(0, 120)}\n  → ${status} ${text.slice(0, 300)}`);
}

/** The case as fetch / app.request options. */
export const hostileInit = (c: HostileCase): RequestInit => ({ method: c.method, ...(c.headers ? { headers: c.headers } : {}), ...(c.body === undefined ? {} : { body: c.body }) });
