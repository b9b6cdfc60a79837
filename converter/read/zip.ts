// Safe .zip extraction: refuses path traversal, and counts what it inflates against one budget
// for the whole upload (nested archives share it, converter/limits.ts). The sizes a zip declares
// are never trusted: entries are inflated in chunks and refused the moment their output passes
// the declared size or the budget, so a lying or bombing archive costs at most the budget.
import { Inflate } from 'fflate';
import { ConversionError } from '../../shared/errors.ts';
import { DEFAULT_LIMITS, mib, type ConversionLimits } from '../limits.ts';
import type { FileSet } from '../model.ts';

/** What is left to one upload's archives, nested ones included. */
export interface UnzipBudget {
  bytesLeft: number;
  entriesLeft: number;
  /** Archives opened so far on the current path (a zip in a zip is 2). */
  depth: number;
  readonly maxBytes: number;
  readonly maxEntries: number;
  /** Whose budget it is, for messages (ConversionLimits.scope). */
  readonly scope: string;
}

export function unzipBudget(limits: Pick<ConversionLimits, 'maxUnzippedBytes' | 'maxZipEntries' | 'scope'> = DEFAULT_LIMITS): UnzipBudget {
  return { bytesLeft: limits.maxUnzippedBytes, entriesLeft: limits.maxZipEntries, depth: 0, maxBytes: limits.maxUnzippedBytes, maxEntries: limits.maxZipEntries, scope: limits.scope };
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 0x03 || bytes[2] === 0x05);
}

function checkEntryName(name: string): void {
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name) || name.includes('\\') || name.includes('\0')) {
    throw new ConversionError(`zip entry ${JSON.stringify(name)} has an absolute path: refused`);
  }
  if (name.split('/').some((segment) => segment === '..')) {
    throw new ConversionError(`zip entry ${JSON.stringify(name)} escapes the archive with '..': refused`);
  }
}

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  headerOffset: number;
}

const broken = (why: string) => new ConversionError(`not a readable zip archive: ${why}`);

/** The central directory's entries (zip64 sizes and offsets read from their extra field). */
function centralDirectory(bytes: Uint8Array): Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw broken('no end of central directory record (truncated?)');
  const count = view.getUint16(end + 10, true);
  let offset = view.getUint32(end + 16, true);
  if (count === 0xffff || offset === 0xffffffff) throw broken('zip64 archives with more than 65535 entries or a 4 GiB directory are not read');
  const entries: Entry[] = [];
  for (let n = 0; n < count; n++) {
    if (offset + 46 > bytes.length || view.getUint32(offset, true) !== 0x02014b50) throw broken(`central directory entry ${n + 1} is damaged`);
    const nameLength = view.getUint16(offset + 28, true);
    const extraLength = view.getUint16(offset + 30, true);
    const commentLength = view.getUint16(offset + 32, true);
    const name = new TextDecoder().decode(bytes.subarray(offset + 46, offset + 46 + nameLength));
    let compressedSize = view.getUint32(offset + 20, true);
    let size = view.getUint32(offset + 24, true);
    let headerOffset = view.getUint32(offset + 42, true);
    // zip64: the fields at 0xffffffff are in the extra field 0x0001, in this order.
    for (let e = offset + 46 + nameLength; e + 4 <= offset + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(e, true);
      const length = view.getUint16(e + 2, true);
      if (id === 1) {
        let field = e + 4;
        const next = () => {
          const value = Number(view.getBigUint64(field, true));
          field += 8;
          return value;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (headerOffset === 0xffffffff) headerOffset = next();
      }
      e += 4 + length;
    }
    entries.push({ name, method: view.getUint16(offset + 10, true), compressedSize, size, headerOffset });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

// Small chunks: one chunk of a deflated run of zeros inflates to ~1000x its size before the check sees it.
const CHUNK = 1 << 14;

/** One entry's bytes, inflated in chunks; refused once the output passes its declared size or the budget. */
function inflateEntry(bytes: Uint8Array, entry: Entry, budget: UnzipBudget): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = entry.headerOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== 0x04034b50) throw broken(`the local header of ${entry.name} is missing`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  if (start + entry.compressedSize > bytes.length) throw broken(`${entry.name} runs past the end of the archive (truncated?)`);
  const data = bytes.subarray(start, start + entry.compressedSize);
  const spend = (n: number) => {
    budget.bytesLeft -= n;
    if (budget.bytesLeft < 0)
      throw new ConversionError(
        `zip expands to more than ${budget.maxBytes} bytes (${mib(budget.maxBytes)}, the decompressed budget ${budget.scope}; a zip bomb, or a model too large; nested archives count together): refused`,
      );
  };
  const lies = (got: string) => new ConversionError(`zip entry ${JSON.stringify(entry.name)} declares ${entry.size} bytes but holds ${got}: a damaged or forged archive, refused`);
  if (entry.method === 0) {
    if (data.length !== entry.size) throw lies(`${data.length}`);
    spend(data.length);
    // A copy with its own buffer (a Node Buffer's slice() would be a view into the archive).
    return new Uint8Array(data);
  }
  if (entry.method !== 8) throw new ConversionError(`zip entry ${JSON.stringify(entry.name)} uses compression method ${entry.method}; only stored and deflate are read`);
  spend(entry.size);
  const out = new Uint8Array(entry.size);
  let written = 0;
  let done = false;
  const inflate = new Inflate((chunk, final) => {
    if (written + chunk.length > entry.size) throw lies('more');
    out.set(chunk, written);
    written += chunk.length;
    done ||= final;
  });
  try {
    for (let i = 0; i < data.length; i += CHUNK) inflate.push(data.subarray(i, i + CHUNK), i + CHUNK >= data.length);
    if (data.length === 0) inflate.push(new Uint8Array(0), true);
  } catch (error) {
    if (error instanceof ConversionError) throw error;
    throw broken(`${entry.name}: ${(error as Error).message}`);
  }
  if (!done || written !== entry.size) throw lies(`${written} (truncated stream)`);
  return out;
}

/**
 * Entries of a zip as a FileSet; a single top-level folder shared by every entry is removed.
 * budget: a number of bytes for this archive alone, or the upload's shared budget.
 */
export function unzip(bytes: Uint8Array, budget: number | UnzipBudget = unzipBudget()): FileSet {
  const shared = typeof budget === 'number' ? unzipBudget({ ...DEFAULT_LIMITS, maxUnzippedBytes: budget }) : budget;
  const entries = centralDirectory(bytes);
  shared.entriesLeft -= entries.length;
  if (shared.entriesLeft < 0) throw new ConversionError(`zip has more than ${shared.maxEntries} entries (nested archives count together): refused`);
  const files: FileSet = new Map();
  for (const entry of entries) {
    checkEntryName(entry.name);
    if (entry.name.endsWith('/') || entry.name.startsWith('__MACOSX/')) continue;
    files.set(entry.name, inflateEntry(bytes, entry, shared));
  }
  const names = [...files.keys()];
  const first = names[0]?.split('/')[0];
  const sharedFolder = names.length > 0 && first !== undefined && names.every((n) => n.startsWith(`${first}/`)) ? `${first}/` : '';
  if (!sharedFolder) return files;
  return new Map([...files].map(([name, data]) => [name.slice(sharedFolder.length), data]));
}
