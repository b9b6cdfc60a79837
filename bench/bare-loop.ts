// A child of bench/serve.ts: one in-process predictor, the machine's ceiling when `cores` of
// them run at once (no HTTP, no server). Loads a converted model from a folder (model.json,
// shards, input.bin), warms up, says "ready" on stdout, waits for a line on stdin, then predicts
// in a loop for the given seconds and prints the per-prediction times (ms) as one JSON line.
//   tsx bench/bare-loop.ts <folder> <compiled 0|1> <seconds> <input shape, comma-separated>
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { useNodeBackend } from '../cli/backend.ts';
import { quietTensorFlow } from '../cli/quiet.ts';
import { loadModel } from '../shared/model-loader.ts';
import { ModelJson } from '../shared/schemas/model-json.ts';
import { timedPredict } from './timed-predict.ts';

async function main(): Promise<void> {
  const [folder, compiled, seconds, shape] = process.argv.slice(2) as [string, string, string, string];
  quietTensorFlow();
  await useNodeBackend();
  const modelJson = ModelJson.parse(JSON.parse(await readFile(path.join(folder, 'model.json'), 'utf8')));
  const shards = new Map<string, Uint8Array>();
  for (const p of modelJson.weightsManifest.flatMap((group) => group.paths)) shards.set(p, new Uint8Array(await readFile(path.join(folder, p))));
  const model = await loadModel(modelJson, (p) => shards.get(p)!, { compile: compiled === '1' });
  const bytes = await readFile(path.join(folder, 'input.bin'));
  const input = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const once = () => timedPredict(model, { values: input, shape: shape.split(',').map(Number) });
  for (let i = 0; i < 5; i++) await once();
  process.stdout.write('ready\n');
  const go = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => go.once('line', () => resolve()));
  go.close();
  const times: number[] = [];
  const end = performance.now() + Number(seconds) * 1000;
  while (performance.now() < end) times.push(await once());
  process.stdout.write(`${JSON.stringify(times)}\n`);
  model.dispose();
}

void main();
