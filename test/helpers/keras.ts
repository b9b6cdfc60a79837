// Node helpers for the Keras suites: where the real fixtures are (../shared/fixtures beside the
// checkout, optional), reading one as a FileSet, and the read → encode → shard → stock-load path.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeWeights } from '../../converter/encode.ts';
import type { DecodedModel, FileSet } from '../../converter/model.ts';
import { shardModel, type ModelFiles } from '../../converter/shard.ts';
import type { StorageDtype } from '../../shared/options/quantize-spec.ts';
import { loadModel, type LoadedModel } from '../../shared/model-loader.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixturesDir = path.resolve(repoRoot, '../shared/fixtures');
export const ownFixturesDir = path.join(repoRoot, 'test/fixtures/keras');

export const KERAS_FIXTURES = {
  xception: 'keras-h5/fer2013_mini_XCEPTION.102-0.66.hdf5',
  lstm: 'keras-h5/lstm_model.h5',
  ssrnetWeights: 'keras-h5/ssrnet_3_3_3_64_1.0_1.0_imdb_age.weights.h5',
  mnistMlp: 'keras-v3/mnist_mlp_keras3.3.3.keras',
  mctQuantized: 'keras-v3/mnist_mct_quantized_keras2.13.keras',
} as const;

export const hasFixture = (relative: string): boolean => existsSync(path.join(fixturesDir, relative));

/** Test-title suffix that says why a test is skipped when its fixture is absent. */
export const needs = (relative: string): string => (hasFixture(relative) ? '' : ` [SKIPPED: ${path.join('../shared/fixtures', relative)} is absent]`);

export const fixtureBytes = (relative: string): Uint8Array => new Uint8Array(readFileSync(path.join(fixturesDir, relative)));

/** A fixture as the one-file FileSet an upload or the CLI would give readModel. */
export const fixtureFiles = (relative: string): FileSet => new Map([[path.basename(relative), fixtureBytes(relative)]]);

export function encodeAndShard(model: DecodedModel, dtype: StorageDtype = 'float32'): ModelFiles {
  return shardModel(
    model,
    encodeWeights(model.weights, () => dtype),
  );
}

/** Loads converted files with the stock TF.js loader (shared/model-loader.ts). */
export function loadConverted(files: ModelFiles): Promise<LoadedModel> {
  return loadModel(files.modelJson, (name) => {
    const bytes = files.files.get(name);
    if (!bytes) throw new Error(`missing shard ${name}`);
    return bytes;
  });
}
