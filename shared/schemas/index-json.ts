// zod schema of models/<name>/index.json: the published versions and the labels pointing at them.
import * as z from 'zod';

export const VersionEntry = z.object({
  version: z.number().int().positive(),
  created: z.string(),
  format: z.enum(['layers-model', 'graph-model']),
  bytes: z.number().int().nonnegative(),
  /** Upload or source identity, so a redelivered conversion publishes nothing twice. */
  sourceId: z.string().optional(),
});
export type VersionEntry = z.infer<typeof VersionEntry>;

export const LABEL_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;

export const IndexJson = z.object({
  name: z.string(),
  versions: z.array(VersionEntry),
  labels: z.record(z.string().regex(LABEL_PATTERN), z.number().int().positive()),
});
export type IndexJson = z.infer<typeof IndexJson>;

/** The version a label names, as an own key only (`constructor`, `__proto__` name nothing). */
export function labelVersion(index: IndexJson, label: string): number | undefined {
  return Object.hasOwn(index.labels, label) ? index.labels[label] : undefined;
}
