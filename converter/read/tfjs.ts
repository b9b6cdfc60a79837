// Reads a TF.js layers or graph model (model.json + shard files) from a FileSet.
import { concatBytes } from '../../shared/bytes.ts';
import { ModelJson, modelKind, topologyProblem } from '../../shared/schemas/model-json.ts';
import { ConversionError } from '../../shared/errors.ts';
import type { DecodedModel, FileSet } from '../model.ts';
import type { ConversionLimits } from '../limits.ts';
import { checkJsonBytes } from './preflight.ts';
import { decodeWeights } from '../../shared/weights.ts';

/** The model.json of a file set: `model.json` itself, else the one JSON with a weightsManifest. */
export function findModelJson(files: FileSet): string | undefined {
  if (files.has('model.json')) return 'model.json';
  const nested = [...files.keys()].filter((p) => p.endsWith('/model.json'));
  if (nested.length === 1) return nested[0];
  const candidates = [...files.keys()].filter((p) => p.endsWith('.json') && hasWeightsManifest(files.get(p)!));
  return candidates.length === 1 ? candidates[0] : undefined;
}

function hasWeightsManifest(bytes: Uint8Array): boolean {
  if (bytes.length > 64 << 20) return false;
  const head = new TextDecoder().decode(bytes);
  return head.includes('"weightsManifest"') && head.includes('"modelTopology"');
}

export function parseModelJson(bytes: Uint8Array, path: string, limits?: ConversionLimits): ModelJson {
  checkJsonBytes(bytes, path, limits);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ConversionError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = ModelJson.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConversionError(`${path} is not a TF.js model.json: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const problem = topologyProblem(parsed.data.modelTopology);
  if (problem) throw new ConversionError(`${path}: the model's topology is broken: ${problem}`);
  return parsed.data;
}

function joinPath(dir: string, path: string): string {
  const parts = dir ? dir.split('/') : [];
  for (const segment of path.split('/')) {
    if (segment === '..' || segment.startsWith('/')) throw new ConversionError(`shard path ${JSON.stringify(path)} leaves the model's folder: refused`);
    if (segment !== '.' && segment !== '') parts.push(segment);
  }
  return parts.join('/');
}

export function readTfjsModel(files: FileSet, modelJsonPath: string, limits?: ConversionLimits): DecodedModel {
  const modelJson = parseModelJson(files.get(modelJsonPath)!, modelJsonPath, limits);
  const dir = modelJsonPath.includes('/') ? modelJsonPath.slice(0, modelJsonPath.lastIndexOf('/')) : '';
  const used = [modelJsonPath];
  const groupBytes = modelJson.weightsManifest.map((group) => {
    const shards = group.paths.map((p) => {
      const encoded = joinPath(dir, p);
      const path = files.has(encoded) ? encoded : decodeURIComponent(encoded);
      const bytes = files.get(path);
      if (!bytes) throw new ConversionError(`shard ${p} named in ${modelJsonPath} is missing`);
      used.push(path);
      return bytes;
    });
    return concatBytes(shards);
  });
  const weights = decodeWeights(modelJson.weightsManifest, groupBytes);
  const { weightsManifest: _manifest, ...rest } = modelJson;
  const format = modelKind(modelJson);
  return {
    format,
    modelJson: rest,
    weights,
    source: {
      format: format === 'graph-model' ? 'tfjs-graph' : 'tfjs-layers',
      files: used,
      bytes: used.reduce((sum, p) => sum + files.get(p)!.byteLength, 0),
      generatedBy: modelJson.generatedBy,
    },
  };
}
