// Turns an error TF.js throws while building a layers model or loading its weights (a bare
// "Shape mismatch: [16] vs. [3,3,16,1]", "expected ndim=4") into a ConversionError that names the
// layer: on failure only, the model is rebuilt without weights and its variables compared with the
// weights manifest. The stack trace never reaches the user.
import { models } from '@tensorflow/tfjs-layers';
import { EdgeflowError, ConversionError } from './errors.ts';
import type { ModelJson } from './schemas/model-json.ts';

const layerOf = (weightName: string): string => weightName.split('/').slice(0, -1).join('/') || weightName;
const shapeText = (shape: readonly (number | null)[]): string => `[${shape.join(', ')}]`;

export async function layersLoadError(error: unknown, modelJson: ModelJson): Promise<Error> {
  if (error instanceof EdgeflowError) return error;
  const message = (error as Error)?.message ?? String(error);
  const specs = new Map(modelJson.weightsManifest.flatMap((group) => group.weights).map((w) => [w.name, w.shape]));
  let built: Awaited<ReturnType<typeof models.modelFromJSON>> | undefined;
  try {
    built = await models.modelFromJSON({ modelTopology: modelJson.modelTopology } as never);
  } catch (buildError) {
    const text = (buildError as Error)?.message ?? String(buildError);
    return new ConversionError(`TF.js cannot build this layers model: ${text.split('\n')[0]}`);
  }
  try {
    for (const variable of built.weights) {
      const stored = specs.get(variable.originalName);
      if (stored === undefined)
        return new ConversionError(`layer ${layerOf(variable.originalName)} has no weight ${variable.originalName} in the converted weights (TF.js: ${message.split('\n')[0]})`);
      if (shapeText(stored) !== shapeText(variable.shape)) {
        return new ConversionError(
          `layer ${layerOf(variable.originalName)}: weight ${variable.originalName} is ${shapeText(stored)} in the file but TF.js builds ${shapeText(variable.shape)} from the config`,
        );
      }
    }
  } finally {
    built.dispose();
  }
  return new ConversionError(`TF.js cannot load this layers model: ${message.split('\n')[0]}`);
}
