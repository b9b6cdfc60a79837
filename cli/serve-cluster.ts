// `edgeflow serve --workers <n>`: n serving processes on one port (node:cluster hands the
// listening socket to every worker), each with its own wasm backend and model cache, so a
// machine's cores all serve. The primary serves nothing: it forks the workers, restarts one that
// dies, runs the upload watcher when --watch (so conversions stay apart from serving), and relays
// messages: a worker's "an upload arrived" to the watcher, the watcher's "model X published" to
// every worker. A worker exits when the primary is gone (its IPC channel closes).
import cluster, { type Worker } from 'node:cluster';
import { EdgeflowError } from '../shared/errors.ts';

export type ClusterMessage = { type: 'listening'; url: string } | { type: 'failed'; message: string } | { type: 'upload' } | { type: 'published'; name: string };

export const isClusterWorker = (): boolean => cluster.isWorker;

/** In a worker: tells the primary something (resolves once sent); a no-op in a single process. */
export function tellPrimary(message: ClusterMessage): Promise<void> {
  return new Promise((resolve) => (cluster.isWorker && process.send ? process.send(message, () => resolve()) : resolve()));
}

/** In a worker: handles the primary's messages, and exits when the primary is gone. */
export function followPrimary(onMessage: (message: ClusterMessage) => void): void {
  process.on('message', (message) => onMessage(message as ClusterMessage));
  process.once('disconnect', () => process.exit(0));
}

export interface RunningCluster {
  /** The URL the workers listen on (from the first to say so). */
  url: string;
  /** Sends a message to every live worker. */
  broadcast(message: ClusterMessage): void;
  /** Stops every worker (SIGTERM, then waits for them to exit). */
  close(): Promise<void>;
}

export interface StartingCluster {
  /** Resolves once a worker listens; rejects when one exits before any does. */
  started: Promise<RunningCluster>;
  /** Stops every worker, started or not (SIGTERM, then waits for them to exit). */
  close(): Promise<void>;
}

/**
 * In the primary: forks `count` workers running this same command line at once, restarts a
 * worker that dies (unless closing), and passes other messages on.
 */
export function startCluster(count: number, onMessage: (message: ClusterMessage) => void, log: (line: string) => void): StartingCluster {
  let closing = false;
  const workers = new Set<Worker>();
  const close = async (): Promise<void> => {
    closing = true;
    const stopping = [...workers].filter((w) => !w.isDead());
    const exits = stopping.map((w) => new Promise<void>((done) => w.once('exit', () => done())));
    for (const w of stopping) w.process.kill('SIGTERM');
    await Promise.all(exits);
  };
  const started = new Promise<RunningCluster>((resolve, reject) => {
    let url: string | undefined;
    let failure: string | undefined;
    const fork = (): void => {
      const worker = cluster.fork();
      workers.add(worker);
      worker.on('message', (message: ClusterMessage) => {
        if (message.type === 'failed') failure ??= message.message;
        if (message.type !== 'listening') return onMessage(message);
        if (url) return;
        url = message.url;
        resolve({
          url,
          broadcast: (m) => {
            for (const w of workers) if (w.isConnected()) w.send(m);
          },
          close,
        });
      });
      worker.once('exit', (code, signal) => {
        workers.delete(worker);
        if (closing) return;
        if (!url) {
          closing = true;
          for (const w of workers) w.process.kill('SIGTERM');
          return reject(new EdgeflowError('unavailable', failure ?? `a serving worker exited before listening (${signal ?? `exit code ${code}`})`));
        }
        log(`worker ${worker.process.pid} exited (${signal ?? `exit code ${code}`}); starting another`);
        fork();
      });
    };
    for (let i = 0; i < count; i++) fork();
  });
  // Awaited only once the primary has checked its flags: a failure before then is not unhandled.
  started.catch(() => undefined);
  return { started, close };
}
