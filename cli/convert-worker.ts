// Entry of the worker thread a conversion runs in on Node (converter/isolated.ts): the same
// wasm backend as the CLI, then one conversion.
import { useNodeBackend } from './backend.ts';
import { quietTensorFlow } from './quiet.ts';
import { serveConversion } from '../converter/node.ts';

quietTensorFlow();
serveConversion(useNodeBackend);
