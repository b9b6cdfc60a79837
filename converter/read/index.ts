// Picks the reader for a model's files: TF.js (layers or graph), Keras HDF5, Keras v3 (.keras zip).
// Archives share one budget for the whole upload (nested ones included), and every model read is
// checked against the conversion budgets (preflight.ts) before anything builds it.
import { ConversionError } from '../../shared/errors.ts';
import { DEFAULT_LIMITS, type ConversionLimits } from '../limits.ts';
import type { DecodedModel, FileSet } from '../model.ts';
import { readKerasH5, readKerasV3, isHdf5 } from './keras.ts';
import { checkJsonBytes, preflight } from './preflight.ts';
import { findModelJson, readTfjsModel } from './tfjs.ts';
import { isZip, unzip, unzipBudget, type UnzipBudget } from './zip.ts';

async function readFiles(files: FileSet, budget: UnzipBudget, limits: ConversionLimits): Promise<DecodedModel> {
  if (files.size === 0) throw new ConversionError('no files were given');
  if (files.size === 1) {
    const [name, bytes] = [...files][0]!;
    if (isHdf5(bytes)) return readKerasH5(bytes, name);
    if (isZip(bytes)) {
      if (++budget.depth > limits.maxZipNesting) throw new ConversionError(`${name} nests archives more than ${limits.maxZipNesting} deep: refused`);
      const entries = unzip(bytes, budget);
      const config = entries.get('config.json');
      if (config) checkJsonBytes(config, `${name}/config.json`, limits);
      if (name.endsWith('.keras') || (entries.has('config.json') && entries.has('model.weights.h5'))) return readKerasV3(entries, name);
      return readFiles(entries, budget, limits);
    }
  }
  const modelJsonPath = findModelJson(files);
  if (modelJsonPath) return readTfjsModel(files, modelJsonPath, limits);
  if (files.has('config.json') || files.has('model.weights.h5')) {
    if (files.has('config.json')) checkJsonBytes(files.get('config.json')!, 'config.json', limits);
    return readKerasV3(files, 'model');
  }
  throw new ConversionError(`no model found in ${[...files.keys()].slice(0, 5).join(', ')}: expected model.json with its shards, a .zip of them, a Keras .h5 or a .keras file`);
}

/**
 * files: one file (.zip, .h5, .keras) or a model.json with its shards.
 * Throws ConversionError naming the problem when the files are not a model edgeflow reads,
 * or one past the conversion budgets (converter/limits.ts: DEFAULT_LIMITS, or WORKER_LIMITS in a Worker).
 */
export async function readModel(files: FileSet, limits: ConversionLimits = DEFAULT_LIMITS): Promise<DecodedModel> {
  try {
    const model = await readFiles(files, unzipBudget(limits), limits);
    preflight(model, limits);
    return model;
  } catch (error) {
    // A config nested past what a reader's recursion takes (an HDF5 attribute, say): the input's fault, not a transient one.
    if (error instanceof RangeError) throw new ConversionError(`the model's configuration is nested too deeply to read (${error.message}): refused`);
    throw error;
  }
}
