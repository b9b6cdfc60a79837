// Bearer-token guard of the admin API: Hono's bearer-auth (constant-time compare of SHA-256
// digests, the token never echoed or logged) with edgeflow's statuses and error bodies. The
// token is a secret (EDGEFLOW_ADMIN_TOKEN: `wrangler secret put` on Workers, the environment on
// Node). No token configured → every admin route is refused (403; Hono's middleware needs a
// token, so that case is answered here); no or malformed Authorization → 401 (Hono says 400 for
// a malformed one); a wrong token → 403 (Hono says 401).
import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth as honoBearerAuth } from 'hono/bearer-auth';
import { EdgeflowError, type ErrorCode } from '../shared/errors.ts';
import { errorResponse } from './http-errors.ts';

const REALM = 'edgeflow-admin';

const refuse = (code: ErrorCode, message: string) => (c: Context) => errorResponse(new EdgeflowError(code, message), c);

export function bearerAuth(configuredToken: string | undefined): MiddlewareHandler {
  if (!configuredToken) {
    return async () => {
      throw new EdgeflowError('forbidden', 'the admin API is disabled: no EDGEFLOW_ADMIN_TOKEN is configured (wrangler secret put EDGEFLOW_ADMIN_TOKEN on Workers, the environment variable on Node)');
    };
  }
  return honoBearerAuth({
    token: configuredToken,
    realm: REALM,
    noAuthenticationHeader: { message: refuse('unauthorized', 'the admin API needs Authorization: Bearer <token>') },
    invalidAuthenticationHeader: { wwwAuthenticateHeader: `Bearer realm="${REALM}"`, message: refuse('unauthorized', 'Authorization must be "Bearer <token>"') },
    invalidToken: { wwwAuthenticateHeader: `Bearer realm="${REALM}", error="invalid_token"`, message: refuse('forbidden', 'the admin token is not valid') },
  });
}
