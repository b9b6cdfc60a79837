// A functional layers model.json whose topology TF.js cannot build is refused by name before
// TF.js sees it: a cycle (on which TF.js loops forever), an input from a layer that does not
// exist, two layers of one name. The same check guards the runtime's loader.
import { describe, expect, it } from 'vitest';
import { readModel } from '../../converter/read/index.ts';
import { ConversionError } from '../../shared/errors.ts';
import { loadModel } from '../../shared/model-loader.ts';
import type { ModelJson } from '../../shared/schemas/model-json.ts';

const dense = (name: string, from: string) => ({ class_name: 'Dense', name, inbound_nodes: [[[from, 0, 0, {}]]], config: { name, units: 2, activation: 'linear', use_bias: false } });
const input = { class_name: 'InputLayer', name: 'x', inbound_nodes: [], config: { name: 'x', batch_input_shape: [null, 2], dtype: 'float32' } };

function functional(layers: unknown[], outputs = 'b'): ModelJson {
  return {
    format: 'layers-model',
    modelTopology: { class_name: 'Model', config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [[outputs, 0, 0]] } },
    weightsManifest: [{ paths: [], weights: [] }],
  };
}

const files = (modelJson: ModelJson) => new Map([['model.json', new TextEncoder().encode(JSON.stringify(modelJson))]]);

async function refusal(modelJson: ModelJson): Promise<string> {
  const error = await readModel(files(modelJson)).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConversionError);
  return (error as Error).message;
}

describe('broken functional topologies', () => {
  it('a cycle is refused, naming the layers, in well under a second', async () => {
    const cyclic = functional([input, dense('a', 'b'), dense('b', 'a')]);
    expect(JSON.stringify(cyclic).length).toBeLessThan(700);
    const started = performance.now();
    expect(await refusal(cyclic)).toMatch(/topology is broken: the layers form a cycle through "(a|b)" \((a|b) → (a|b) → (a|b)\)/);
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(loadModel(cyclic, () => new Uint8Array())).rejects.toThrow(/form a cycle/);
  });

  it('a self loop, a dangling input, a duplicate name and an unknown output are each named', async () => {
    expect(await refusal(functional([input, dense('a', 'x'), dense('b', 'b')]))).toMatch(/cycle through "b"/);
    expect(await refusal(functional([input, dense('a', 'x'), dense('b', 'ghost')]))).toMatch(/layer "b" takes its input from "ghost", which is not a layer/);
    expect(await refusal(functional([input, dense('a', 'x'), dense('a', 'x')], 'a'))).toMatch(/two layers are named "a"/);
    expect(await refusal(functional([input, dense('a', 'x')], 'nowhere'))).toMatch(/outputs name "nowhere"/);
  });

  it('a sound functional topology passes the check and builds', async () => {
    const model = await readModel(files(functional([input, dense('a', 'x'), dense('b', 'a')])));
    expect(model.format).toBe('layers-model');
  });
});
