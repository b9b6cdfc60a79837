// The converter's Node-only face: reading inputs from disk, and conversions in a worker thread.
export { isolatedConverter, serveConversion, type Converter } from './isolated.ts';
export { readInput } from './read/files.ts';
