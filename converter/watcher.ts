// The polling trigger for stores without event notifications (a local folder, any S3-compatible
// server): lists uploads/ every interval, and hands each manifest it has not settled yet to the
// same consumer the Workers queue uses, as the same R2 event message. Several watchers may run
// at once: the consumer's lease (shared/bucket/claim.ts) lets exactly one convert an upload.
// The upload's status document decides what is settled and how many attempts were made, so a
// restarted watcher converts nothing twice; what this process remembers (uploads it saw
// settle, retry back-off) only saves reads. Failures stay in the upload's status (the Node
// counterpart of the dead-letter queue).
import { listAll } from '../shared/store/util.ts';
import { consumeUploadEvent, type ConsumeOutcome, type ConsumerOptions } from './consumer.ts';
import { MANIFEST_FILE, type UploadEvent } from '../shared/bucket/uploads.ts';

/** Conversion attempts per upload (its status' attempts, takeovers not counted) before a transient failure is final. */
export const DEFAULT_MAX_ATTEMPTS = 5;

export interface WatcherOptions extends Omit<ConsumerOptions, 'attempt' | 'maxDeliveries'> {
  intervalMs: number;
  /** Conversion attempts per upload before a transient failure is final (default DEFAULT_MAX_ATTEMPTS). */
  maxAttempts?: number;
  onOutcome?: (outcome: ConsumeOutcome) => void;
}

export class UploadWatcher {
  /** Manifests whose status this process saw published or failed: not read again. */
  private readonly settled = new Set<string>();
  private readonly notBefore = new Map<string, number>();
  private wake: (() => void) | null = null;
  private kicked = false;

  constructor(private readonly options: WatcherOptions) {}

  /** One pass over uploads/: converts every pending upload it can claim, one at a time. */
  async pollOnce(): Promise<ConsumeOutcome[]> {
    const manifests = (await listAll(this.options.store, 'uploads/')).filter((o) => o.key.endsWith(`/${MANIFEST_FILE}`) && !this.settled.has(o.key));
    const outcomes: ConsumeOutcome[] = [];
    for (const object of manifests) {
      if ((this.notBefore.get(object.key) ?? 0) > Date.now()) continue;
      const event: UploadEvent = {
        account: 'local',
        action: 'PutObject',
        bucket: this.options.store.description,
        object: { key: object.key, size: object.size, eTag: object.etag },
        eventTime: new Date(object.uploaded ?? Date.now()).toISOString(),
      };
      const outcome = await consumeUploadEvent(event, { ...this.options, maxDeliveries: this.options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS });
      outcomes.push(outcome);
      this.options.onOutcome?.(outcome);
      if (outcome.kind === 'retry') {
        // Another watcher holds it: look again next pass (its status will say published).
        if (!outcome.busy) this.notBefore.set(object.key, Date.now() + outcome.delaySeconds * 1000);
      } else {
        this.settled.add(object.key);
        this.notBefore.delete(object.key);
      }
    }
    return outcomes;
  }

  /** Polls until signal aborts; kick() starts the next pass at once (an upload just arrived). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.pollOnce();
      } catch (error) {
        this.options.log?.(`poll failed: ${(error as Error).message}`);
      }
      if (signal.aborted || this.kicked) {
        this.kicked = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.options.intervalMs);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        this.wake = done;
        signal.addEventListener('abort', done);
      });
      this.wake = null;
    }
  }

  kick(): void {
    this.kicked = true;
    this.wake?.();
  }
}

// Re-exported from shared/ (the serve command parses --lease without loading the converter).
export { parseDuration } from '../shared/duration.ts';
