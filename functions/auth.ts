// Bearer-token guard of the admin API. The token is a secret (EDGEFLOW_ADMIN_TOKEN: `wrangler
// secret put` on Workers, the environment on Node). No token configured → every admin route is
// refused; no or malformed Authorization → 401; a wrong token → 403. Tokens are compared in
// constant time (equal-length SHA-256 digests, every byte visited) and never echoed or logged.
import type { MiddlewareHandler } from 'hono';
import { EdgeflowError } from '../shared/errors.ts';

const encoder = new TextEncoder();

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/** True when the digests are equal, visiting every byte (time independent of where they differ). */
function sameDigest(x: Uint8Array, y: Uint8Array): boolean {
  let difference = 0;
  for (let i = 0; i < x.length; i++) difference |= x[i]! ^ y[i]!;
  return difference === 0;
}

export function bearerAuth(configuredToken: string | undefined): MiddlewareHandler {
  let expected: Promise<Uint8Array> | undefined; // the configured token's digest, computed once
  return async (c, next) => {
    if (!configuredToken) {
      throw new EdgeflowError('forbidden', 'the admin API is disabled: no EDGEFLOW_ADMIN_TOKEN is configured (wrangler secret put EDGEFLOW_ADMIN_TOKEN on Workers, the environment variable on Node)');
    }
    const header = c.req.header('authorization');
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      c.header('WWW-Authenticate', 'Bearer realm="edgeflow-admin"');
      throw new EdgeflowError('unauthorized', header ? 'Authorization must be "Bearer <token>"' : 'the admin API needs Authorization: Bearer <token>');
    }
    expected ??= digest(configuredToken);
    if (!sameDigest(await digest(match[1]!), await expected)) throw new EdgeflowError('forbidden', 'the admin token is not valid');
    await next();
  };
}
