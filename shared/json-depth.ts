// A linear byte scan of JSON nesting, run before JSON.parse: a deeply nested document costs the
// parser and every recursive walker after it (stack overflows), the scan only a pass over bytes.
// Used by request bodies (functions/body.ts) and model files (converter/read/preflight.ts).

const OPEN_BRACKET = 0x5b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The first byte offset where nesting passes maxDepth (brackets inside strings do not count); -1 when none does. */
export function tooDeepAt(bytes: Uint8Array, maxDepth: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACKET || b === OPEN_BRACE) {
      if (++depth > maxDepth) return i;
    } else if (b === CLOSE_BRACKET || b === CLOSE_BRACE) depth--;
  }
  return -1;
}
