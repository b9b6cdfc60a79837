// Keras readers without Python: `model.save` HDF5 files (Keras 2, and the legacy .h5 Keras 3
// still writes) and Keras 3 `.keras` zips (config.json, metadata.json, model.weights.h5).
// Both become a TF.js layers model: the Keras config translated for tfjs-layers 4.22, and the
// weights named and ordered as stock tf.loadLayersModel expects. HDF5 is read with jsfive
// (pure JS, so it runs in workerd too).
import { ConversionError } from '../../shared/errors.ts';
import type { DecodedModel, DecodedWeight, FileSet } from '../model.ts';
import { translateModelConfig } from './keras/config.ts';
import { keras1ToKeras2 } from './keras/keras1.ts';
import type { KerasLayer } from './keras/config-types.ts';
import { attrString, attrStrings, childGroup, openHdf5, type Group } from './keras/hdf5.ts';
import { collectWeights, H5Scope, V3Scope } from './keras/weights.ts';

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export function isHdf5(bytes: Uint8Array): boolean {
  return HDF5_SIGNATURE.every((b, i) => bytes[i] === b);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConversionError(`${what} is not valid JSON (${(error as Error).message})`);
  }
}

const majorVersion = (version: string | undefined): number => Number.parseInt(version ?? '', 10) || 3;

interface Parts {
  name: string;
  sourceFormat: 'keras-h5' | 'keras-v3';
  files: string[];
  bytes: number;
  kerasVersion: string;
  backend: string;
  modelConfig: KerasLayer;
  trainingConfig?: unknown;
  weights: DecodedWeight[];
}

function decodedModel(parts: Parts): DecodedModel {
  const generatedBy = `keras v${parts.kerasVersion}`;
  return {
    format: 'layers-model',
    modelJson: {
      format: 'layers-model',
      generatedBy,
      convertedBy: 'edgeflow',
      modelTopology: {
        keras_version: parts.kerasVersion,
        backend: parts.backend,
        model_config: parts.modelConfig,
        ...(parts.trainingConfig !== undefined ? { training_config: parts.trainingConfig } : {}),
      },
    },
    weights: parts.weights,
    source: { format: parts.sourceFormat, files: parts.files, bytes: parts.bytes, generatedBy },
  };
}

/** A weights-only file: Keras 2 save_weights (layer_names at the root) or Keras 3 .weights.h5 (a layers group). */
function looksWeightsOnly(file: Group): boolean {
  return (
    attrStrings(file, 'layer_names') !== undefined ||
    childGroup(file, 'layers') !== undefined ||
    childGroup(file, '_layer_checkpoint_dependencies') !== undefined ||
    childGroup(file, 'model_weights') !== undefined
  );
}

/** Names of the Lambda layers anywhere in a raw Keras config (nested models included). */
function lambdaLayers(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(lambdaLayers);
  if (typeof node !== 'object' || node === null) return [];
  const record = node as Record<string, unknown>;
  const config = record.config as Record<string, unknown> | undefined;
  const own = record.class_name === 'Lambda' ? [String(config?.name ?? record.name ?? 'lambda')] : [];
  return [...own, ...Object.values(record).flatMap(lambdaLayers)];
}

/** A Keras `model.save('model.h5')` file (Keras 2, or Keras 3's legacy HDF5). */
export async function readKerasH5(bytes: Uint8Array, name: string): Promise<DecodedModel> {
  const file = openHdf5(bytes, name);
  const configText = attrString(file, 'model_config');
  if (configText === undefined) {
    if (looksWeightsOnly(file)) {
      throw new ConversionError(
        `${name} holds weights only (written by save_weights): it has no model_config, so the model's architecture is unknown. ` +
          `Save the whole model with model.save('model.h5') or model.save('model.keras') and convert that file`,
      );
    }
    const entries = file.keys.slice(0, 5).join(', ') || 'nothing';
    throw new ConversionError(`${name} is an HDF5 file but not a Keras model: it has no model_config attribute (its top level holds ${entries})`);
  }
  const weightsRoot = childGroup(file, 'model_weights');
  const kerasVersion = attrString(file, 'keras_version') ?? (weightsRoot && attrString(weightsRoot, 'keras_version')) ?? 'unknown';
  let rawConfig = parseJson(configText, `${name}: model_config`);
  if (/^1\./.test(kerasVersion)) {
    // Keras 1 configs are rewritten as Keras 2 ones; a Lambda is named with what replaces it in Keras 2.
    const lambdas = lambdaLayers(rawConfig);
    const keras1 = keras1ToKeras2(rawConfig, attrString(file, 'backend'));
    if (lambdas.length > 0) {
      keras1.problems.unshift(
        `its Lambda layer${lambdas.length > 1 ? 's' : ''} ${lambdas.join(', ')} hold${lambdas.length > 1 ? '' : 's'} Python bytecode no converter can run: replace ${lambdas.length > 1 ? 'them' : 'it'} with built-in layers (a Rescaling layer for x / 255 - 0.5, Cropping2D for slicing) before saving`,
      );
    }
    if (keras1.problems.length > 0) throw new ConversionError(`${name} was written by Keras ${kerasVersion}: ${keras1.problems.join('; ')}`);
    rawConfig = keras1.config;
  }
  const modelConfig = translateModelConfig(rawConfig, { kerasMajor: Math.max(2, majorVersion(kerasVersion)), source: name });
  if (!weightsRoot) throw new ConversionError(`${name} has a model_config but no model_weights group: the file holds no weights`);
  const trainingText = attrString(file, 'training_config');
  return decodedModel({
    name,
    sourceFormat: 'keras-h5',
    files: [name],
    bytes: bytes.byteLength,
    kerasVersion,
    backend: attrString(file, 'backend') ?? 'tensorflow',
    modelConfig,
    trainingConfig: trainingText ? parseJson(trainingText, `${name}: training_config`) : undefined,
    weights: collectWeights(modelConfig, new H5Scope(weightsRoot)),
  });
}

/** A Keras 3 `.keras` archive, already unzipped (entries config.json, metadata.json, model.weights.h5). */
export async function readKerasV3(files: FileSet, name: string): Promise<DecodedModel> {
  const configBytes = files.get('config.json');
  const entries = [...files.keys()].slice(0, 5).join(', ') || 'nothing';
  if (!configBytes) {
    throw new ConversionError(`${name}: a .keras archive must hold config.json (the model's architecture); this one holds ${entries}. Weights alone cannot be converted`);
  }
  const weightsBytes = files.get('model.weights.h5');
  if (!weightsBytes) throw new ConversionError(`${name}: the .keras archive has config.json but no model.weights.h5 (it holds ${entries})`);
  const decoder = new TextDecoder();
  const metadataBytes = files.get('metadata.json');
  const metadata = metadataBytes ? parseJson(decoder.decode(metadataBytes), `${name}: metadata.json`) : {};
  const kerasVersion = typeof (metadata as { keras_version?: unknown }).keras_version === 'string' ? (metadata as { keras_version: string }).keras_version : 'unknown';
  const modelConfig = translateModelConfig(parseJson(decoder.decode(configBytes), `${name}: config.json`), { kerasMajor: majorVersion(kerasVersion), source: name });
  const weightsName = `${name}/model.weights.h5`;
  if (!isHdf5(weightsBytes)) throw new ConversionError(`${weightsName} is not an HDF5 file`);
  const h5 = openHdf5(weightsBytes, weightsName);
  const root = childGroup(h5, 'layers') ?? childGroup(h5, '_layer_checkpoint_dependencies') ?? h5;
  return decodedModel({
    name,
    sourceFormat: 'keras-v3',
    files: [name],
    bytes: [...files.values()].reduce((sum, b) => sum + b.byteLength, 0),
    kerasVersion,
    backend: 'tensorflow',
    modelConfig,
    weights: collectWeights(modelConfig, new V3Scope(root, modelConfig)),
  });
}
