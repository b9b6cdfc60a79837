// The converter's public face: what the entries (CLI, scripts, the Worker's queue handler) use of
// the pipeline. Platform-neutral: Node-only pieces (files on disk, worker threads) are in node.ts.
export { parseCalibrationJson, parseNpy } from './calibration.ts';
export type { CalibrationFile } from './calibration-files.ts';
export { consumeUploadEvent, type ConsumeOutcome, type ConsumerOptions } from './consumer.ts';
export { convertAndPublish, convertModel, type ConvertOptions, type ConvertResult, type PublishedConversion } from './convert.ts';
export type { DecodedModel, FileSet } from './model.ts';
export { readModel } from './read/index.ts';
export { DEFAULT_MAX_ATTEMPTS, parseDuration, UploadWatcher } from './watcher.ts';
