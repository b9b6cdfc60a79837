// The real edge Worker (built as `wrangler deploy` builds it) in workerd through Miniflare with
// the bindings of wrangler.toml: R2 MODELS, the uploads queue (producer + this Worker's queue()
// consumer) and the dead-letter queue. A second small worker consumes the dead-letter queue and
// records each message under dead-letters/ in the same bucket, so tests can see what landed there.
import { Miniflare } from 'miniflare';
import type { R2Bucket } from '@cloudflare/workers-types';
import { R2Store } from '../../shared/store/r2.ts';
import type { WorkerBundle } from '../../scripts/edge-worker.ts';

export interface UploadWorker {
  mf: Miniflare;
  url: string;
  store: R2Store;
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

const DLQ_RECORDER = `
export default {
  async queue(batch, env) {
    for (const message of batch.messages) {
      await env.MODELS.put('dead-letters/' + message.id + '.json', JSON.stringify(message.body));
      message.ack();
    }
  },
};`;

/** onLog: each line the Workers log (console.log in the isolate), as it arrives; they are then not printed. */
export async function startUploadWorker(bundle: WorkerBundle, vars: Record<string, string>, onLog?: (line: string) => void): Promise<UploadWorker> {
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    ...(onLog ? { handleStructuredLogs: ({ message }: { message: string }) => void onLog(message) } : {}),
    workers: [
      {
        name: 'edgeflow',
        modules: true,
        scriptPath: bundle.script,
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
        compatibilityDate: '2026-04-01',
        r2Buckets: { MODELS: 'edgeflow-models' },
        bindings: vars,
        queueProducers: { UPLOAD_QUEUE: 'edgeflow-uploads', UPLOAD_DLQ: 'edgeflow-uploads-dlq' },
        // As wrangler.toml, with fewer retries.
        queueConsumers: { 'edgeflow-uploads': { maxBatchSize: 1, maxBatchTimeout: 1, maxRetries: 2, deadLetterQueue: 'edgeflow-uploads-dlq' } },
      },
      {
        name: 'dlq-recorder',
        modules: true,
        script: DLQ_RECORDER,
        compatibilityDate: '2026-04-01',
        r2Buckets: { MODELS: 'edgeflow-models' },
        queueConsumers: { 'edgeflow-uploads-dlq': { maxBatchSize: 10, maxBatchTimeout: 1 } },
      },
    ],
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const bucket = (await mf.getR2Bucket('MODELS', 'edgeflow')) as unknown as R2Bucket;
  return {
    mf,
    url,
    store: new R2Store(bucket, 'MODELS'),
    fetch: (pathname, init) => fetch(`${url}${pathname}`, init),
    dispose: () => mf.dispose(),
  };
}
