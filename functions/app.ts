// The Hono app factory: one app, the same routes on Workers and on Node. The entries
// (worker.ts, node.ts) differ only in how they build the store and the runtime.
import { Hono } from 'hono';
import type { AppEnv } from './app-env.ts';
import type { Limits } from './limits.ts';
import { resolveLimits } from './limits.ts';
import { adminRoutes, type AdminOptions } from './routes/admin.ts';
import { admission } from './admission.ts';
import { tfServingRoutes } from './routes/tfserving.ts';
import { v2Routes } from './routes/v2.ts';
import { clipMessage, errorResponse } from './http-errors.ts';
import type { ModelRuntime } from './runtime/runtime.ts';
import { SERVER_NAME, SERVER_VERSION } from './version.ts';
import { CONSOLE_HTML } from './console/assets.gen.ts';

export interface AppOptions {
  runtime: ModelRuntime;
  limits?: Partial<Limits>;
  /** 'workerd' or 'node': reported by /v2 and /. */
  platform: string;
  /** Admin API (uploads, labels, versions); refused unless admin.token is set. */
  admin?: AdminOptions;
}

export function createApp(options: AppOptions): Hono<AppEnv> {
  const limits = resolveLimits(options.limits);
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    c.set('runtime', options.runtime);
    c.set('limits', limits);
    c.set('platform', options.platform);
    await next();
  });

  app.get('/', (c) =>
    // A browser (Accept: text/html) gets the console; JSON clients get the server's description.
    c.req.header('accept')?.includes('text/html')
      ? c.html(CONSOLE_HTML)
      : c.json({
          name: SERVER_NAME,
          version: SERVER_VERSION,
          platform: options.platform,
          backend: options.runtime.backendStatus(),
          models: options.runtime.stats(),
          limits,
          apis: [
            'GET /v1/models/{name}[/versions/{v}|/labels/{l}][/metadata]',
            'POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict',
            'POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify|:regress',
            'GET /v2/health/live|ready',
            'GET /v2',
            'POST /v2/repository/index',
            'GET /v2/models/{name}[/versions/{v}][/ready]',
            'POST /v2/models/{name}[/versions/{v}]/infer',
          ],
        }),
  );

  // A bad %-escape anywhere in the path is a 400 naming it (errorResponse maps the URIError), on
  // every route: Hono decodes parameters leniently, so v2 and admin would look the raw text up (404).
  app.use('*', async (c, next) => {
    decodeURIComponent(c.req.path);
    await next();
  });
  app.use('*', admission(limits.maxInFlight));
  app.route('/', tfServingRoutes());
  app.route('/', v2Routes());
  app.route('/', adminRoutes(options.admin));

  app.notFound((c) => c.json({ error: clipMessage(`no route ${c.req.method} ${c.req.path}`) }, 404));
  app.onError(errorResponse);
  return app;
}
