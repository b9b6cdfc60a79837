// `npm run bench:bodies`: what a request body costs, JSON against binary, for one 224x224x3
// MobileNetV2 image (the nsfwjs fixture at uint8; skipped without ../shared/fixtures), served by
// `edgeflow serve --workers 1` in a child process over loopback. Bodies (built once):
//   v1 JSON instances (numbers), v1 JSON {"b64": float32 bytes}, v2 JSON data (flat numbers),
//   v2 binary tensor data (FP32 after the JSON header), v1 raw octet-stream float32, and
//   v1 raw octet-stream uint8 (integer pixels: the same bytes a quarter the size; other values).
// The variants run interleaved, round by round (ROUNDS, default 200; first WARM_ROUNDS dropped),
// so the machine's drift hits every one alike. Per variant: body bytes, the server's
// Server-Timing read / parse / decode medians (ms), end-to-end p50 / p90 (ms, the client's
// fetch until the answer is read), and p50 less the binary FP32 p50.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useNodeBackend } from '../cli/backend.ts';
import { table } from '../cli/format.ts';
import { convertAndPublish } from '../converter/convert.ts';
import { optionalFixtures } from '../scripts/fixture-models.ts';
import { LocalFolderStore } from '../shared/store/local.ts';
import { seededRandom } from '../shared/random.ts';
import { spawnServe } from './proc.ts';
import { quantile } from './stats.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 200);
const WARM_ROUNDS = 5;

interface Variant {
  label: string;
  path: string;
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

const utf8 = new TextEncoder();
const bytesOf = (view: ArrayBufferView) => new Uint8Array(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength);
const JSON_TYPE = { 'content-type': 'application/json' };
const RAW_TYPE = { 'content-type': 'application/octet-stream' };

function variants(name: string, input: string, pixels: Float32Array): Variant[] {
  const shape = [1, 224, 224, 3];
  const nested = [Array.from({ length: 224 }, (_, y) => Array.from({ length: 224 }, (_, x) => Array.from(pixels.subarray((y * 224 + x) * 3, (y * 224 + x + 1) * 3))))];
  const head = utf8.encode(JSON.stringify({ inputs: [{ name: input, shape, datatype: 'FP32', parameters: { binary_data_size: pixels.byteLength } }] }));
  const framed = new Uint8Array(head.byteLength + pixels.byteLength);
  framed.set(head);
  framed.set(bytesOf(pixels), head.byteLength);
  const integers = Uint8Array.from(pixels, (v) => Math.round(v * 255));
  return [
    { label: 'v1 JSON instances', path: `/v1/models/${name}:predict`, body: utf8.encode(JSON.stringify({ instances: nested })), headers: JSON_TYPE },
    {
      label: 'v1 JSON b64 float32',
      path: `/v1/models/${name}:predict`,
      body: utf8.encode(JSON.stringify({ instances: [{ b64: Buffer.from(pixels.buffer).toString('base64') }] })),
      headers: JSON_TYPE,
    },
    {
      label: 'v2 JSON data',
      path: `/v2/models/${name}/infer`,
      body: utf8.encode(JSON.stringify({ inputs: [{ name: input, shape, datatype: 'FP32', data: Array.from(pixels) }] })),
      headers: JSON_TYPE,
    },
    { label: 'v2 binary FP32', path: `/v2/models/${name}/infer`, body: framed, headers: { ...RAW_TYPE, 'inference-header-content-length': String(head.byteLength) } },
    { label: 'v1 raw float32', path: `/v1/models/${name}:predict`, body: bytesOf(pixels), headers: RAW_TYPE },
    { label: 'v1 raw uint8 (0-255 pixels)', path: `/v1/models/${name}:predict?dtype=uint8`, body: integers, headers: RAW_TYPE },
  ];
}

/** The named Server-Timing durations (ms). */
function serverTiming(header: string | null): Record<string, number> {
  return Object.fromEntries((header ?? '').split(',').map((entry) => [entry.trim().split(';')[0]!, Number(/dur=([\d.]+)/.exec(entry)?.[1] ?? Number.NaN)]));
}

async function main(): Promise<void> {
  const [fixture] = await optionalFixtures();
  if (!fixture) {
    console.log('bench:bodies: the MobileNetV2 fixture (../shared/fixtures) is absent: nothing to measure');
    return;
  }
  await useNodeBackend();
  const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-bodies-'));
  const server = await (async () => {
    await convertAndPublish(new LocalFolderStore(folder), fixture.files, { name: 'mobilenet', quantize: fixture.quantize, samples: 1 });
    return spawnServe(folder, ['--workers', '1', '--max-body', String(16 * 1024 * 1024)]);
  })();
  try {
    const metadata = (await (await fetch(`${server.url}/v2/models/mobilenet`)).json()) as { inputs: { name: string }[] };
    const random = seededRandom(11);
    const pixels = Float32Array.from({ length: 224 * 224 * 3 }, () => Math.round(random() * 255) / 255);
    const all = variants('mobilenet', metadata.inputs[0]!.name, pixels);
    const results = all.map(() => ({ e2e: [] as number[], read: [] as number[], parse: [] as number[], decode: [] as number[], infer: [] as number[] }));
    let reference: string | undefined;
    for (let round = 0; round < ROUNDS + WARM_ROUNDS; round++) {
      for (const [i, variant] of all.entries()) {
        const start = performance.now();
        const response = await fetch(`${server.url}${variant.path}`, { method: 'POST', body: variant.body, headers: variant.headers });
        const text = await response.text();
        const elapsed = performance.now() - start;
        if (response.status !== 200) throw new Error(`${variant.label}: ${response.status} ${text.slice(0, 300)}`);
        if (round === 0 && i < 5) {
          // every float32 body carries the same numbers: the same top class everywhere
          const scores = (
            (JSON.parse(text) as { predictions?: number[][]; outputs?: { data: number[] }[] }).predictions?.[0] ?? (JSON.parse(text) as { outputs: { data: number[] }[] }).outputs[0]!.data
          )
            .map((v) => v.toFixed(4))
            .join(',');
          if (reference !== undefined && scores !== reference) throw new Error(`${variant.label} answers ${scores}, not ${reference}`);
          reference = scores;
        }
        if (round < WARM_ROUNDS) continue;
        const timing = serverTiming(response.headers.get('server-timing'));
        const r = results[i]!;
        r.e2e.push(elapsed);
        r.read.push(timing.read ?? Number.NaN);
        r.parse.push(timing.parse ?? Number.NaN);
        r.decode.push(timing.decode ?? Number.NaN);
        r.infer.push(timing.infer ?? Number.NaN);
      }
    }
    const binaryP50 = quantile(results[all.findIndex((v) => v.label === 'v2 binary FP32')]!.e2e, 0.5);
    const f = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
    console.log(`MobileNetV2 uint8, one 224x224x3 image, ${ROUNDS} interleaved rounds, edgeflow serve --workers 1 over loopback (ms)`);
    console.log(
      table([
        ['body', 'bytes', 'read p50', 'parse p50', 'decode p50', 'infer p50', 'e2e p50', 'e2e p90', 'p50 - binary'],
        ...all.map((variant, i) => {
          const r = results[i]!;
          const p50 = quantile(r.e2e, 0.5);
          return [
            variant.label,
            String(variant.body.byteLength),
            f(quantile(r.read, 0.5)),
            f(quantile(r.parse, 0.5)),
            f(quantile(r.decode, 0.5)),
            f(quantile(r.infer, 0.5)),
            f(p50),
            f(quantile(r.e2e, 0.9)),
            f(p50 - binaryP50),
          ];
        }),
      ]),
    );
  } finally {
    await server.stop();
    await rm(folder, { recursive: true, force: true });
  }
}

await main();
