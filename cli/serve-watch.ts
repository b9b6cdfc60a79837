// `edgeflow serve --watch`: the upload watcher of a serving process, loaded only with --watch so
// that a plain `edgeflow serve` starts without the converter (its readers, quantizers and the
// cpu reference backend).
import { UploadWatcher } from '../converter/index.ts';
import type { ObjectStore } from '../shared/store/types.ts';
import { isolatedNodeConverter, useNodeBackend } from './backend.ts';
import { describeOutcome } from './watch.ts';

export type { UploadWatcher };

/** Converts uploads as they come (each in a worker thread); `ensureBackend` defaults to this process's wasm backend. */
export function uploadWatcher(store: ObjectStore, onPublished: (name: string) => void, leaseMs: number, ensureBackend: () => Promise<unknown> = useNodeBackend): UploadWatcher {
  return new UploadWatcher({
    store,
    owner: `serve:${process.pid}`,
    intervalMs: 5000,
    leaseMs,
    ensureBackend,
    convert: isolatedNodeConverter(),
    onPublished,
    onOutcome: (outcome) => outcome.kind !== 'ignored' && console.log(`watch: ${describeOutcome(outcome)}`),
  });
}
