// Text to token ids for the Embedding layer: lower-case word tokens, a vocabulary of the most
// frequent training words (0 = padding, 1 = out of vocabulary), fixed-length sequences.

export const UNKNOWN = 1;

export function tokenize(text: string): string[] {
  return text.toLowerCase().match(/[a-z][a-z0-9'$!]*|\$?\d+(?:[.,]\d+)*|[!$]/g) ?? [];
}

/** The `size - 2` most frequent tokens (ties by first appearance), ids from 2. */
export function buildVocabulary(documents: Iterable<string[]>, size: number): string[] {
  const counts = new Map<string, number>();
  for (const tokens of documents) for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, size - 2)
    .map(([token]) => token);
}

/** Token ids of the first `length` tokens, padded with 0 at the end. */
export function encode(tokens: string[], index: Map<string, number>, length: number): Int32Array {
  const ids = new Int32Array(length);
  for (let i = 0; i < Math.min(length, tokens.length); i++) ids[i] = index.get(tokens[i]!) ?? UNKNOWN;
  return ids;
}

export const vocabularyIndex = (vocabulary: string[]) => new Map(vocabulary.map((token, i) => [token, i + 2]));
