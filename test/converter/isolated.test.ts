// The isolated converter (Node): a conversion in a worker thread with a heap limit converts as
// in-process, keeps the event loop free, refuses hostile input with the same code and message,
// and a worker killed by its heap limit mid-conversion is a permanent `unconvertible` failure
// naming the limit, while this thread goes on converting.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { CONVERSION_NICENESS, isolatedConverter } from '../../converter/isolated.ts';
import { readModel } from '../../converter/read/index.ts';
import { isEdgeflowError } from '../../shared/errors.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const workerUrl = new URL('../../cli/convert-worker.mjs', import.meta.url);

/** The niceness of each thread of this process (Linux /proc; field 19 of a thread's stat). */
function threadNiceness(): number[] {
  if (process.platform !== 'linux') return [];
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return []; // the thread ended
    }
  });
}

/** A Sequential model of n Dense(4 → 4) identity layers: tiny weights, many layers. */
function deepDenseModel(n: number): Map<string, Uint8Array> {
  const layers = Array.from({ length: n }, (_, i) => ({
    class_name: 'Dense',
    config: { name: `d${i}`, units: 4, activation: 'linear', use_bias: true, ...(i === 0 ? { batch_input_shape: [null, 4] } : {}) },
  }));
  const weights = layers.flatMap((_, i) => [
    { name: `d${i}/kernel`, shape: [4, 4], dtype: 'float32' },
    { name: `d${i}/bias`, shape: [4], dtype: 'float32' },
  ]);
  const values = new Float32Array(n * 20);
  for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) values[i * 20 + k * 5] = 1;
  const modelJson = { format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 'deep', layers } }, weightsManifest: [{ paths: ['w.bin'], weights }] };
  return new Map([
    ['model.json', new TextEncoder().encode(JSON.stringify(modelJson))],
    ['w.bin', new Uint8Array(values.buffer)],
  ]);
}

/** The longest gap between ticks of a 5 ms interval while work runs: how long the event loop was blocked. */
async function longestStall<T>(work: () => Promise<T>): Promise<{ value: T | unknown; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  try {
    const value = await work().catch((error: unknown) => error);
    return { value, stallMs };
  } finally {
    clearInterval(timer);
  }
}

describe('isolated converter', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('converts in a worker thread as in-process, relaying progress, with the event loop free', async () => {
    const decoded = await readModel(await tinyDenseModel());
    const stages = new Set<string>();
    const convert = isolatedConverter({ workerUrl });
    const niceness = new Set<number>();
    const { value, stallMs } = await longestStall(() =>
      convert(decoded, {
        name: 'tiny',
        quantize: 'uint8',
        samples: 4,
        onProgress: ({ stage }) => {
          stages.add(stage);
          for (const n of threadNiceness()) niceness.add(n);
        },
      }),
    );
    console.log(`isolated conversion of the tiny dense model: longest event-loop stall ${stallMs.toFixed(0)} ms`);
    const result = value as Awaited<ReturnType<typeof convert>>;
    expect(result.report.passed).toBe(true);
    expect([...result.modelFiles.files.keys()]).toContain('model.json');
    expect(result.metadata.quantization.spec).toBe('uint8');
    expect([...stages]).toEqual(expect.arrayContaining(['reference', 'quantize', 'verify']));
    if (process.platform === 'linux') expect([...niceness], 'the conversion thread runs niced below serving').toContain(CONVERSION_NICENESS);
  });

  it('calibration files cross into the worker: the conversion calibrates on them', async () => {
    const decoded = await readModel(await tinyDenseModel());
    const instances = Array.from({ length: 3 }, (_, i) => Array.from({ length: 16 }, (_, j) => (i - j) / 16));
    const calibrationFiles = [{ path: 'calibration/rows.json', bytes: new TextEncoder().encode(JSON.stringify({ instances })) }];
    const result = await isolatedConverter({ workerUrl })(decoded, { name: 'tiny', quantize: 'uint8', calibrationFiles });
    expect(result.report).toMatchObject({ calibrationKind: 'data', samples: 3, calibration: 'calibration/rows.json: 3 samples' });
  });

  it('a refusal inside the worker keeps its code and message', async () => {
    const decoded = await readModel(await tinyDenseModel());
    const error = await isolatedConverter({ workerUrl })(decoded, { name: 'tiny', quantize: 'int3' } as never).catch((e: unknown) => e);
    expect(isEdgeflowError(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/int3/);
  });

  it('a worker past its heap limit mid-conversion dies alone: unconvertible, naming the limit, and the next conversion runs', async () => {
    // 2,000 Dense(4) layers: a few KiB of weights and within every preflight budget, but TF.js's
    // layer objects outgrow a 64 MiB heap while the float32 reference runs (the worker starts in ~40 MiB).
    const decoded = await readModel(deepDenseModel(2000));
    const stages: string[] = [];
    const error = await isolatedConverter({ workerUrl, maxOldGenerationSizeMb: 64 })(decoded, { name: 'deep', quantize: 'uint8', samples: 4, onProgress: ({ stage }) => stages.push(stage) }).catch(
      (e: unknown) => e,
    );
    expect(isEdgeflowError(error, 'unconvertible'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/^the conversion ran out of its 64 MiB heap limit .*: the model is too large or hostile$/);
    expect(stages, 'the worker died mid-conversion, after it had started').toContain('reference');
    const next = await isolatedConverter({ workerUrl })(await readModel(await tinyDenseModel()), { name: 'tiny', quantize: 'uint8', samples: 4 });
    expect(next.report.passed).toBe(true);
  });
});
