// Picks the reader for a model's files: TF.js (layers or graph), Keras HDF5, Keras v3 (.keras zip).
import { ConversionError } from '../../shared/errors.ts';
import type { DecodedModel, FileSet } from '../model.ts';
import { readKerasH5, readKerasV3, isHdf5 } from './keras.ts';
import { findModelJson, readTfjsModel } from './tfjs.ts';
import { isZip, unzip } from './zip.ts';

/**
 * files: one file (.zip, .h5, .keras) or a model.json with its shards.
 * Throws ConversionError naming the problem when the files are not a model edgeflow reads.
 */
export async function readModel(files: FileSet): Promise<DecodedModel> {
  if (files.size === 0) throw new ConversionError('no files were given');
  if (files.size === 1) {
    const [name, bytes] = [...files][0]!;
    if (isHdf5(bytes)) return readKerasH5(bytes, name);
    if (isZip(bytes)) {
      const entries = unzip(bytes);
      if (name.endsWith('.keras') || (entries.has('config.json') && entries.has('model.weights.h5'))) return readKerasV3(entries, name);
      return readModel(entries);
    }
  }
  const modelJsonPath = findModelJson(files);
  if (modelJsonPath) return readTfjsModel(files, modelJsonPath);
  if (files.has('config.json') || files.has('model.weights.h5')) return readKerasV3(files, 'model');
  throw new ConversionError(`no model found in ${[...files.keys()].slice(0, 5).join(', ')}: expected model.json with its shards, a .zip of them, a Keras .h5 or a .keras file`);
}
