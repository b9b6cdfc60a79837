// Reads of the published layout shared by the publisher, the admin API and the runtime:
// models/<name>/index.json and models/<name>/<version>/edgeflow.json, validated.
import { EdgeflowJson, type WeightQuantization } from '../schemas/edgeflow-json.ts';
import { IndexJson } from '../schemas/index-json.ts';
import { keys } from '../names.ts';
import type { ObjectStore } from '../store/types.ts';
import { getJson } from '../store/util.ts';

/** The model's index.json and its etag; null when absent; throws when malformed. */
export async function readIndex(store: ObjectStore, name: string): Promise<{ index: IndexJson; etag: string } | null> {
  const found = await getJson(store, keys.index(name));
  if (!found) return null;
  const parsed = IndexJson.safeParse(found.value);
  if (!parsed.success) throw new Error(`${keys.index(name)} is malformed: ${parsed.error.issues[0]?.message}`);
  return { index: parsed.data, etag: found.etag };
}

/** A version's edgeflow.json; null when absent; throws naming the bad field when malformed. */
export async function readVersionMetadata(store: ObjectStore, name: string, version: number): Promise<EdgeflowJson | null> {
  const found = await getJson(store, keys.versionFile(name, version, 'edgeflow.json'));
  if (!found) return null;
  const parsed = EdgeflowJson.safeParse(found.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`edgeflow.json is malformed (${issue?.path.join('.')}: ${issue?.message})`);
  }
  return parsed.data;
}

/** How many weights are stored at each dtype. */
export function dtypeCounts(weights: Record<string, WeightQuantization>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { dtype } of Object.values(weights)) counts[dtype] = (counts[dtype] ?? 0) + 1;
  return counts;
}
