// The global binding types named by worker-configuration.d.ts, which `npx wrangler types
// --include-runtime=false --strict-vars=false` generates from wrangler.toml. The runtime types
// come from @cloudflare/workers-types, imported where used: as globals they would clash with
// the DOM and Node types the rest of the project is checked against.
import type { Queue as WorkersQueue, R2Bucket as WorkersR2Bucket } from '@cloudflare/workers-types';

declare global {
  type R2Bucket = WorkersR2Bucket;
  type Queue<Body = unknown> = WorkersQueue<Body>;
}
