// Entry of the worker thread a conversion runs in on Node (converter/isolated.ts): the same
// wasm backend as the CLI, then one conversion.
import { quietTensorFlow, useNodeBackend } from './backend.ts';
import { serveConversion } from '../converter/node.ts';

quietTensorFlow();
serveConversion(useNodeBackend);
