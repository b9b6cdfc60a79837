// The models `edgeflow train` knows, by name.
import { EdgeflowError } from '../shared/errors.ts';
import { celsius } from './celsius.ts';
import { co2, co2Gru } from './co2.ts';
import { mnist } from './mnist.ts';
import { mnistTransfer } from './mnist-transfer.ts';
import { spam } from './spam.ts';
import type { ModelDefinition } from './types.ts';

export const MODELS: Record<string, ModelDefinition> = Object.fromEntries([celsius, mnist, mnistTransfer, co2, co2Gru, spam].map((m) => [m.name, m]));

export function findModel(name: string): ModelDefinition {
  const model = MODELS[name];
  if (!model) throw new EdgeflowError('bad_request', `unknown model ${JSON.stringify(name)}: choose one of ${Object.keys(MODELS).join(', ')}`);
  return model;
}
