// `edgeflow watch --store <folder | s3://bucket/prefix> [--interval 5s]`: polls the store's
// uploads/ and converts + publishes every new upload (converter/watcher.ts). Run as many as you
// like on one store: each upload is claimed by exactly one of them. Runs until SIGINT / SIGTERM
// (finishing the conversion in progress), or with --once until one pass is done.
import { hostname } from 'node:os';
import { openExistingStore } from '../shared/store/open.ts';
import { checkLeaseMs } from '../shared/bucket/claim.ts';
import { DEFAULT_LEASE_MS } from '../shared/options/serving.ts';
import { type ConsumeOutcome, DEFAULT_MAX_ATTEMPTS, parseDuration, UploadWatcher } from '../converter/index.ts';
import { flagValue, parseCommandLine, UsageError } from './args.ts';
import { isolatedNodeConverter, useNodeBackend } from './backend.ts';

export const HELP = `Usage: edgeflow watch --store <folder | s3://bucket/prefix> [options]

Converts and publishes every upload written under uploads/<name>/<id>/ of the store (by the
admin API, \`edgeflow train --upload\`, or any S3 client writing the files, then the manifest
edgeflow-upload.json). Several watchers may share a store: each upload is converted once.

--store <store>        a folder, or s3://bucket/prefix (AWS_* variables, AWS_ENDPOINT_URL for R2 / MinIO)
--interval <duration>  time between polls (default 5s; e.g. 500ms, 30s, 2m)
--lease <duration>     how long a claim on an upload lasts without a heartbeat (default ${DEFAULT_LEASE_MS / 1000}s, at
                       least 1s; renewed every third of it): a crashed watcher's upload is taken over after it
--max-attempts <n>     conversion attempts per upload before a transient failure is final (default 5;
                       a takeover from a crashed watcher is no attempt)
--samples <n>          calibration samples for the drift check (default 8)
--once                 one pass over the pending uploads, then exit (1 if any failed)
--name <id>            this watcher's name in statuses and logs (default host:pid)
`;

export function describeOutcome(outcome: ConsumeOutcome): string {
  switch (outcome.kind) {
    case 'done':
      return `${outcome.uploadId}: ${outcome.name} version ${outcome.version} ${outcome.existing ? 'was already published' : 'published'}`;
    case 'failed':
      return `${outcome.uploadId ?? '?'}: ${outcome.earlier ? 'failed earlier' : 'FAILED'}: ${outcome.reason}`;
    case 'retry':
      return outcome.busy ? `${outcome.uploadId}: skipped, ${outcome.reason}` : `${outcome.uploadId}: will retry in ${outcome.delaySeconds}s: ${outcome.reason}`;
    case 'ignored':
      return `ignored: ${outcome.reason}`;
  }
}

export async function watchCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    HELP,
    {
      store: { type: 'string' },
      interval: { type: 'string', default: '5s' },
      lease: { type: 'string' },
      'max-attempts': { type: 'string' },
      samples: { type: 'string' },
      once: { type: 'boolean', default: false },
      name: { type: 'string' },
    },
    ['store'],
  );
  if (typeof parsed === 'number') return parsed;
  const values = { ...parsed.values, store: parsed.values.store! };
  const intervalMs = flagValue(() => parseDuration(values.interval));
  const leaseMs = values.lease ? flagValue(() => checkLeaseMs(parseDuration(values.lease!))) : DEFAULT_LEASE_MS;
  const maxAttempts = values['max-attempts'] ? Number(values['max-attempts']) : DEFAULT_MAX_ATTEMPTS;
  const samples = values.samples ? Number(values.samples) : undefined;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new UsageError('--max-attempts needs a positive integer');
  if (samples !== undefined && (!Number.isInteger(samples) || samples < 1)) throw new UsageError('--samples needs a positive integer');
  const store = await openExistingStore(values.store);
  const owner = values.name ?? `${hostname()}:${process.pid}`;
  const stamp = () => new Date().toISOString().slice(11, 23);
  const watcher = new UploadWatcher({
    store,
    owner,
    intervalMs,
    leaseMs,
    maxAttempts,
    samples,
    ensureBackend: useNodeBackend,
    convert: isolatedNodeConverter(),
    log: (line) => console.error(`[${stamp()}] ${line}`),
    onOutcome: (outcome) => {
      if (outcome.kind !== 'ignored') console.log(`[${stamp()}] ${owner} ${describeOutcome(outcome)}`);
    },
  });
  console.log(`edgeflow watch: ${owner} polling ${store.description}/uploads/ every ${intervalMs} ms`);
  if (values.once) {
    const outcomes = await watcher.pollOnce();
    return outcomes.some((o) => o.kind === 'failed') ? 1 : 0;
  }
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
  await watcher.run(stop.signal);
  return 0;
}
