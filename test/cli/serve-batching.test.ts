// `edgeflow serve`'s micro-batching flags (--batch-max-size, --batch-timeout-us,
// --batch-max-enqueued) and the Node server with them: concurrent HTTP predictions are merged
// and each answer is byte for byte the answer of a server with batching off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServeFlags } from '../../cli/serve-flags.ts';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { startNodeServer, type NodeServer } from '../../functions/node.ts';
import { buildIrisDense } from '../../scripts/demo-models.ts';
import { MemoryStore } from '../../shared/store/memory.ts';

describe('serve flags: micro-batching', () => {
  const parse = (flags: Record<string, string>) => parseServeFlags({ store: 'models', ...flags }).batching;

  it('off by default and at --batch-max-size 1; TF Serving defaults otherwise', () => {
    expect(parse({})).toBeUndefined();
    expect(parse({ 'batch-max-size': '1' })).toBeUndefined();
    expect(parse({ 'batch-max-size': '32' })).toEqual({ maxBatchSize: 32, batchTimeoutMicros: 1000, maxEnqueuedBatches: 0 });
    expect(parse({ 'batch-max-size': '8', 'batch-timeout-us': '250', 'batch-max-enqueued': '4' })).toEqual({ maxBatchSize: 8, batchTimeoutMicros: 250, maxEnqueuedBatches: 4 });
  });

  it('refuses bad values, and the other knobs without a batch size, by name', () => {
    expect(() => parse({ 'batch-max-size': '0' })).toThrow('--batch-max-size needs a whole number ≥ 1, got "0"');
    expect(() => parse({ 'batch-max-size': '2.5' })).toThrow('--batch-max-size needs a whole number ≥ 1');
    expect(() => parse({ 'batch-max-size': '4', 'batch-timeout-us': '1ms' })).toThrow('--batch-timeout-us needs a non-negative number, got "1ms"');
    expect(() => parse({ 'batch-max-size': '4', 'batch-max-enqueued': '1.5' })).toThrow('--batch-max-enqueued needs a whole number ≥ 0');
    expect(() => parse({ 'batch-timeout-us': '500' })).toThrow('--batch-timeout-us needs --batch-max-size 2 or more (micro-batching is off)');
    expect(() => parse({ 'batch-max-size': '1', 'batch-max-enqueued': '2' })).toThrow('--batch-max-enqueued needs --batch-max-size 2 or more');
  });
});

describe('the Node server with --batch-max-size', () => {
  const store = new MemoryStore();
  let off: NodeServer;
  let on: NodeServer;

  beforeAll(async () => {
    await useNodeBackend();
    await convertAndPublish(store, await buildIrisDense(), { name: 'iris', quantize: 'float16', samples: 4 });
    off = await startNodeServer({ store, port: 0 });
    on = await startNodeServer({ store, port: 0, batching: { maxBatchSize: 16, batchTimeoutMicros: 20_000, maxEnqueuedBatches: 0 } });
  });

  afterAll(async () => {
    await Promise.all([off?.close(), on?.close()]);
  });

  const predict = async (server: NodeServer, body: string) => {
    const response = await fetch(`${server.url}/v1/models/iris:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: response.status, body: await response.text() };
  };

  it('40 concurrent requests of 1-4 rows: merged, each answer equal to the unbatched server', async () => {
    const bodies = Array.from({ length: 40 }, (_, i) => JSON.stringify({ instances: Array.from({ length: 1 + (i % 4) }, (_, r) => [4 + i / 10, 3 - r / 5, 1 + (i % 7) / 3, r / 4]) }));
    const batched = await Promise.all(bodies.map((body) => predict(on, body)));
    for (const [i, body] of bodies.entries()) expect(batched[i], `request ${i}`).toEqual(await predict(off, body));
    const stats = on.runtime.stats().batching!;
    expect(stats.mergedRuns).toBeGreaterThanOrEqual(2);
    expect(stats.mergedRequests).toBeGreaterThanOrEqual(10);
    expect(off.runtime.stats().batching).toBeNull();
  });
});
