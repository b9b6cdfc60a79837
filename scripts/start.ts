// `npm start`: publishes the demo models into the local R2 bucket that `wrangler dev` uses
// (persisted under .wrangler/state, through wrangler's getPlatformProxy), then runs
// `wrangler dev` (workerd) and prints the URL with curl examples once the Worker answers.
// Re-running converts and publishes nothing twice (each demo has a sourceId from its bytes).
// The admin API is on: the upload route always sends the upload's event to the upload queue
// (R2 event notifications do not fire in wrangler dev) and the same Worker's queue() converts it. The admin token is EDGEFLOW_ADMIN_TOKEN from the environment, or a fresh one
// made for this session (printed: it is only for this local server).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { getPlatformProxy } from 'wrangler';
import type { R2Bucket } from '@cloudflare/workers-types';
import { useNodeBackend } from '../cli/backend.ts';
import { convertAndPublish, type FileSet } from '../converter/index.ts';
import { sha256Hex } from '../shared/hash.ts';
import { readIndex } from '../shared/bucket/published.ts';
import { R2Store } from '../shared/store/r2.ts';
import { demoModels } from './demo-models.ts';
import { optionalFixtures } from './fixture-models.ts';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const port = Number(process.env.PORT ?? 8787);
const adminToken = process.env.EDGEFLOW_ADMIN_TOKEN || `dev-${crypto.randomUUID()}`;

async function sourceId(files: FileSet, classifier: object = {}): Promise<string> {
  const parts = await Promise.all([...files].sort(([a], [b]) => a.localeCompare(b)).map(async ([name, bytes]) => `${name}:${await sha256Hex(bytes)}`));
  if (Object.keys(classifier).length > 0) parts.push(JSON.stringify(classifier));
  return `demo:${await sha256Hex(new TextEncoder().encode(parts.join('\n')))}`;
}

async function seed(): Promise<string[]> {
  console.log(`${await useNodeBackend()} for converting the demo models`);
  const proxy = await getPlatformProxy<{ MODELS: R2Bucket }>({ configPath: path.join(root, 'wrangler.toml'), persist: true });
  try {
    const store = new R2Store(proxy.env.MODELS, 'MODELS (local)');
    const published: string[] = [];
    for (const model of [...(await demoModels()), ...(await optionalFixtures())]) {
      const id = await sourceId(model.files, model.classifier);
      // Already published from these bytes: skip the conversion (publishVersion would only find it after one).
      const done = (await readIndex(store, model.name))?.index.versions.find((v) => v.sourceId === id);
      const result = done
        ? { version: done.version, existing: true }
        : await convertAndPublish(store, model.files, { name: model.name, quantize: model.quantize, ...model.classifier, samples: 2, sourceId: id });
      console.log(`  ${model.name} v${result.version} ${result.existing ? '(already published)' : `published (${model.quantize})`}: ${model.description}`);
      published.push(model.name);
    }
    return published;
  } finally {
    await proxy.dispose();
  }
}

async function waitReady(url: string, child: ReturnType<typeof spawn>): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/v2/health/ready`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('wrangler dev did not become ready in 150 s');
}

const models = await seed();
const url = `http://127.0.0.1:${port}`;
const child = spawn(
  process.execPath,
  [path.join(root, 'node_modules/wrangler/bin/wrangler.js'), 'dev', '--ip', '127.0.0.1', '--port', String(port), '--var', `EDGEFLOW_ADMIN_TOKEN:${adminToken}`, ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: ['inherit', 'inherit', 'inherit'],
  },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 0));

await waitReady(url, child);
const ready = (await (await fetch(`${url}/v2/health/ready`)).json()) as { backend: { simd: boolean } };
console.log(`
Console: ${url}/  (open it in a browser; the admin token below unlocks uploads and labels)

edgeflow is running in workerd at ${url}  (wasm ${ready.backend.simd ? 'with SIMD' : 'WITHOUT SIMD'}; models: ${models.join(', ')})

  curl ${url}/v1/models/iris-dense/metadata
  curl -X POST ${url}/v1/models/iris-dense:predict -d '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
  curl -X POST ${url}/v2/models/iris-dense/infer -d '{"inputs": [{"name": "hidden_input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}'

Admin API (uploads are converted by this Worker's queue consumer, the local queue standing in
for R2 event notifications)${process.env.EDGEFLOW_ADMIN_TOKEN ? ', token from EDGEFLOW_ADMIN_TOKEN' : ''}:

${process.env.EDGEFLOW_ADMIN_TOKEN ? '' : `  export EDGEFLOW_ADMIN_TOKEN=${adminToken}\n`}  # upload the README tour's model (npx edgeflow train celsius --out ./celsius-model), or any .h5 / .keras / .zip as
  # --data-binary @model.keras "${url}/admin/models/my-model/uploads?filename=model.keras&quantize=uint8"
  curl -H "Authorization: Bearer $EDGEFLOW_ADMIN_TOKEN" -F files=@celsius-model/model.json -F files=@celsius-model/group1-shard1of1.bin ${url}/admin/models/celsius/uploads
  curl -H "Authorization: Bearer $EDGEFLOW_ADMIN_TOKEN" ${url}/admin/uploads/<id from the answer>
  curl -H "Authorization: Bearer $EDGEFLOW_ADMIN_TOKEN" ${url}/admin/models

Press Ctrl+C to stop.
`);
