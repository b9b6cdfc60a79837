// The TF.js backend of one isolate or process: started once, lazily, by a starter that
// differs per platform (workerd needs a precompiled wasm module; Node uses the stock backend).
// Its status (backend, SIMD, threads, init time, error) is reported by health and metadata.
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

export class Backend {
  private starting: Promise<void> | null = null;
  private current: BackendStatus = NOT_STARTED;

  constructor(private readonly starter: BackendStarter) {}

  /** Starts the backend on first use; concurrent callers share one start; a failed start is retried later. */
  ensure(): Promise<void> {
    if (this.current.ready) return Promise.resolve();
    this.starting ??= (async () => {
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
        this.starting = null;
      }
    })();
    return this.starting;
  }

  status(): BackendStatus {
    return { ...this.current };
  }
}
