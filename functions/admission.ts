// Admission control for predictions: at most `maxInFlight` prediction requests (`:predict`,
// `:classify`, `:regress`, `/infer`) run or wait in this process (or isolate) at once; past it the
// answer is 503 with Retry-After, at once, instead of a latency that grows without bound. The
// count is a plain number: nothing is shared across requests but it.
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './app-env.ts';

const PREDICTION = /(:predict|:classify|:regress|\/infer)$/;

export function admission(maxInFlight: number): MiddlewareHandler<AppEnv> {
  let inFlight = 0;
  return async (c, next) => {
    if (c.req.method !== 'POST' || !PREDICTION.test(c.req.path)) return next();
    if (inFlight >= maxInFlight) {
      return c.json({ error: `server busy: ${inFlight} predictions are in progress (the limit is ${maxInFlight}); retry in a moment` }, 503, { 'Retry-After': '1' });
    }
    inFlight++;
    try {
      await next();
    } finally {
      inFlight--;
    }
  };
}
