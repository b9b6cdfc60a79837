// The hostile HTTP table (test/helpers/hostile-requests.ts) against the Worker as wrangler builds
// it, in workerd with R2: every kind answers its status (never 500) with a short {"error"}
// naming the problem, and afterwards the Worker still predicts what it predicted before.
import { rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { demoModels } from '../../scripts/demo-models.ts';
import { buildWorker, type RunningWorker, startWorker } from '../../scripts/edge-worker.ts';
import { checkHostileAnswer, GOOD_PREDICT, HOSTILE_ADMIN_TOKEN, HOSTILE_MAX_BODY_BYTES, type HostileCase, hostileInit, hostileRequests } from '../helpers/hostile-requests.ts';

let worker: RunningWorker;

/**
 * A request whose Content-Length lies (fetch refuses to send one) over a raw socket: the
 * headers, the short body, then the write side closed; the answer's status and body.
 */
function rawRequest(c: HostileCase): Promise<{ status: number; text: string }> {
  const url = new URL(worker.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      const head = [`${c.method} ${c.path} HTTP/1.1`, `host: ${url.host}`, 'connection: close', ...Object.entries(c.headers ?? {}).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${head.join('\r\n')}\r\n\r\n`);
      if (c.body !== undefined) socket.write(c.body);
      socket.end();
    });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(raw)?.[1] ?? 0);
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      // chunked answers: the one chunk's text between its size line and the terminator
      const text = /transfer-encoding: chunked/i.test(raw) ? body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '') : body;
      resolve({ status, text });
    });
  });
}

const liesAboutLength = (c: HostileCase) =>
  c.headers?.['content-length'] !== undefined && Number(c.headers['content-length']) !== (typeof c.body === 'string' ? Buffer.byteLength(c.body) : (c.body?.byteLength ?? 0));
let bundleDir = '';
let before: unknown;
const predict = () => worker.fetch(GOOD_PREDICT.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: GOOD_PREDICT.body });

beforeAll(async () => {
  await useNodeBackend();
  const bundle = await buildWorker();
  bundleDir = bundle.dir;
  worker = await startWorker(bundle, { vars: { MAX_BODY_BYTES: String(HOSTILE_MAX_BODY_BYTES), EDGEFLOW_ADMIN_TOKEN: HOSTILE_ADMIN_TOKEN } });
  for (const model of await demoModels()) await convertAndPublish(worker.store, model.files, { name: model.name, quantize: model.quantize, ...model.classifier, samples: 1 });
  const response = await predict();
  expect(response.status).toBe(200);
  before = await response.json();
}, 180_000);

afterAll(async () => {
  await worker?.dispose();
  if (bundleDir) await rm(bundleDir, { recursive: true, force: true });
});

describe('hostile HTTP in workerd (the built Worker)', () => {
  it.each(hostileRequests().map((c) => [c.kind, c] as const))('%s', async (_kind, c) => {
    if (liesAboutLength(c)) {
      const { status, text } = await rawRequest(c);
      checkHostileAnswer(c, status, text);
      return;
    }
    const response = await worker.fetch(c.path, hostileInit(c));
    checkHostileAnswer(c, response.status, await response.text());
  });

  it('still predicts what it predicted before the hostile run', async () => {
    const response = await predict();
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(before);
  });
});
