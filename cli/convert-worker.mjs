// The worker thread a conversion runs in on Node (converter/isolated.ts) starts here: it loads
// the TypeScript entry through tsx, as bin/edgeflow.mjs does, since a worker has no --import.
import { register } from 'tsx/esm/api';

register();
await import('./convert-worker.ts');
