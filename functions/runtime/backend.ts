// The TF.js backend of one isolate or process: started once, lazily, by a starter that
// differs per platform (workerd needs a precompiled wasm module; Node uses the stock backend).
// Its status (backend, SIMD, threads, init time, error) is reported by health and metadata.
// Requests that arrive while another starts it wait on their own timers (wait.ts), not on the
// starting request's promise (Workers forbid awaiting another request's work).
import { pollUntil } from './wait.ts';

export interface BackendStatus {
  /** 'wasm' once started; what tf.getBackend() says. */
  backend: string | null;
  /** The wasm binary in use has SIMD. False means a much slower path: reported, never hidden. */
  simd: boolean;
  threads: boolean;
  /** Which wasm binary: 'tfjs-backend-wasm-simd.wasm' etc. */
  binary: string | null;
  initMs: number | null;
  ready: boolean;
  error?: string;
  warning?: string;
}

export type BackendInfo = Omit<BackendStatus, 'ready' | 'initMs' | 'error'>;

/** Starts TF.js on this platform and says what it got. Throws when no backend could start. */
export type BackendStarter = () => Promise<BackendInfo>;

const NOT_STARTED: BackendStatus = { backend: null, simd: false, threads: false, binary: null, initMs: null, ready: false };

/** A start running longer than this is presumed dead (its request was cancelled): another request starts again. */
const START_WAIT_MS = 60_000;

export class Backend {
  /** When the start under way began; null when none is. */
  private startedAt: number | null = null;
  /** Finished starts, successful or not: a waiter's start is over when this moves. */
  private attempts = 0;
  private current: BackendStatus = NOT_STARTED;

  constructor(private readonly starter: BackendStarter) {}

  /** Starts the backend on first use; one start at a time; a failed start is retried later. */
  async ensure(): Promise<void> {
    for (;;) {
      if (this.current.ready) return;
      if (this.startedAt === null || this.startIsStale()) return this.start();
      const attempt = this.attempts;
      await pollUntil(() => (this.attempts !== attempt || this.startedAt === null || this.startIsStale() ? true : undefined));
      if (this.attempts !== attempt && !this.current.ready) throw new Error(this.current.error ?? 'the backend did not start');
    }
  }

  private startIsStale(): boolean {
    return this.startedAt !== null && Date.now() - this.startedAt >= START_WAIT_MS;
  }

  private async start(): Promise<void> {
    const startedAt = Date.now();
    this.startedAt = startedAt;
    const start = performance.now();
    try {
      const info = await this.starter();
      const warning = info.simd ? info.warning : `WASM SIMD is NOT available: predictions run on the plain wasm binary, 2.5-3x slower${info.warning ? `; ${info.warning}` : ''}`;
      this.current = { ...info, ...(warning ? { warning } : {}), initMs: performance.now() - start, ready: true };
      if (!info.simd) console.warn(`edgeflow: ${warning}`);
    } catch (error) {
      this.current = { ...NOT_STARTED, initMs: performance.now() - start, error: `backend failed to start: ${(error as Error).message ?? String(error)}` };
      throw new Error(this.current.error);
    } finally {
      if (this.startedAt === startedAt) this.startedAt = null;
      this.attempts++;
    }
  }

  status(): BackendStatus {
    return { ...this.current };
  }
}
