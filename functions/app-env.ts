// The Hono context every route sees: the model runtime, the request limits and the platform
// name, set once per request by the app (app.ts); the Server-Timing metrics of hono/timing.
import type { TimingVariables } from 'hono/timing';
import type { Limits } from './limits.ts';
import type { ModelRuntime } from './runtime/runtime.ts';

export type AppEnv = { Variables: { runtime: ModelRuntime; limits: Limits; platform: string } & TimingVariables };
