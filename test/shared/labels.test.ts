// Labels are looked up as own keys of index.json's `labels` only: names that exist on every
// JavaScript object (constructor, toString, __proto__) name nothing, on the admin side and in
// the runtime's resolution.
import { describe, expect, it } from 'vitest';
import { removeLabel, setLabel } from '../../shared/bucket/versions.ts';
import { keys } from '../../shared/names.ts';
import type { IndexJson } from '../../shared/schemas/index-json.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { putJson } from '../../shared/store/util.ts';
import { ModelRegistry } from '../../functions/runtime/registry.ts';

async function storeWithOneVersion(): Promise<MemoryStore> {
  const store = new MemoryStore();
  const index: IndexJson = { name: 'tiny', versions: [{ version: 1, created: '2026-12-01T00:00:00.000Z', format: 'layers-model', bytes: 10 }], labels: { latest: 1 } };
  await putJson(store, keys.index('tiny'), index);
  return store;
}

describe('labels that every object inherits', () => {
  for (const label of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
    it(`${label}: the runtime answers not found, removing it is not found`, async () => {
      const store = await storeWithOneVersion();
      await expect(new ModelRegistry(store, 0).resolveVersion('tiny', { label })).rejects.toMatchObject({ code: 'not_found', message: expect.stringContaining(`no label ${JSON.stringify(label)}`) });
      await expect(removeLabel(store, 'tiny', label)).rejects.toMatchObject({ code: expect.stringMatching(/^(not_found|bad_request)$/) });
    });
  }

  it('a label named constructor can be set and then resolves like any other', async () => {
    const store = await storeWithOneVersion();
    await setLabel(store, 'tiny', 'constructor', 1);
    expect((await new ModelRegistry(store, 0).resolveVersion('tiny', { label: 'constructor' })).version).toBe(1);
    await removeLabel(store, 'tiny', 'constructor');
    await expect(new ModelRegistry(store, 0).resolveVersion('tiny', { label: 'constructor' })).rejects.toMatchObject({ code: 'not_found' });
  });
});
