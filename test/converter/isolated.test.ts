// The isolated converter (Node): a conversion in a worker thread with a heap limit converts as
// in-process, keeps the event loop free, refuses hostile input with the same code and message,
// and a worker killed by its heap limit is a permanent `unconvertible` failure naming the limit.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { isolatedConverter } from '../../converter/isolated.ts';
import { readModel } from '../../converter/read/index.ts';
import { isEdgeflowError } from '../../shared/errors.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const workerUrl = new URL('../../cli/convert-worker.mjs', import.meta.url);

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
    const { value, stallMs } = await longestStall(() => convert(decoded, { name: 'tiny', quantize: 'uint8', samples: 4, onProgress: ({ stage }) => stages.add(stage) }));
    console.log(`isolated conversion of the tiny dense model: longest event-loop stall ${stallMs.toFixed(0)} ms`);
    const result = value as Awaited<ReturnType<typeof convert>>;
    expect(result.report.passed).toBe(true);
    expect([...result.modelFiles.files.keys()]).toContain('model.json');
    expect(result.metadata.quantization.spec).toBe('uint8');
    expect([...stages]).toEqual(expect.arrayContaining(['reference', 'quantize', 'verify']));
  });

  it('a refusal inside the worker keeps its code and message', async () => {
    const decoded = await readModel(await tinyDenseModel());
    const error = await isolatedConverter({ workerUrl })(decoded, { name: 'tiny', quantize: 'int3' } as never).catch((e: unknown) => e);
    expect(isEdgeflowError(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/int3/);
  });

  it('a worker past its heap limit dies alone: unconvertible, naming the limit', async () => {
    const decoded = await readModel(await tinyDenseModel());
    const error = await isolatedConverter({ workerUrl, maxOldGenerationSizeMb: 4 })(decoded, { name: 'tiny', quantize: 'uint8', samples: 4 }).catch((e: unknown) => e);
    expect(isEdgeflowError(error, 'unconvertible'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/ran out of its 4 MiB heap limit/);
  });
});
