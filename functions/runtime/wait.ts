// Waiting for work another request started, without sharing a promise across requests. In
// Workers, I/O started by one request cannot be awaited by another: a request awaiting a promise
// that another request's I/O settles can be cancelled as "hung". So a request that waits for a
// load or a backend start another request runs polls plain state on its own timers (timers are
// per request and keep it alive), on Node as on Workers: one code path.

/** How often a waiting request looks again. */
export const POLL_MS = 4;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls check() every POLL_MS (on this request's own timers) until it returns something other
 * than undefined, and returns that.
 */
export async function pollUntil<T>(check: () => T | undefined): Promise<T> {
  for (;;) {
    await sleep(POLL_MS);
    const value = check();
    if (value !== undefined) return value;
  }
}
