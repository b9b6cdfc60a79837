// Safe .zip extraction: refuses path traversal and caps the decompressed size before
// allocating (entries are inflated into buffers of their declared size, never grown).
import { unzipSync } from 'fflate';
import { ConversionError } from '../../shared/errors.ts';
import type { FileSet } from '../model.ts';

export const DEFAULT_MAX_UNZIPPED_BYTES = 1 << 30;
const MAX_ENTRIES = 10_000;

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

/** Entries of a zip as a FileSet; a single top-level folder shared by every entry is removed. */
export function unzip(bytes: Uint8Array, maxBytes = DEFAULT_MAX_UNZIPPED_BYTES): FileSet {
  let declared = 0;
  let entries = 0;
  let raw: Record<string, Uint8Array>;
  try {
    raw = unzipSync(bytes, {
      filter: (entry) => {
        checkEntryName(entry.name);
        if (++entries > MAX_ENTRIES) throw new ConversionError(`zip has more than ${MAX_ENTRIES} entries: refused`);
        declared += entry.originalSize;
        if (declared > maxBytes) {
          throw new ConversionError(`zip expands to more than ${maxBytes} bytes (a zip bomb, or a model too large): refused`);
        }
        return !entry.name.endsWith('/') && !entry.name.startsWith('__MACOSX/');
      },
    });
  } catch (error) {
    if (error instanceof ConversionError) throw error;
    throw new ConversionError(`not a readable zip archive: ${(error as Error).message}`);
  }
  const names = Object.keys(raw);
  const first = names[0]?.split('/')[0];
  const sharedFolder = names.length > 0 && first !== undefined && names.every((n) => n.startsWith(`${first}/`)) ? `${first}/` : '';
  const files: FileSet = new Map();
  for (const name of names) files.set(name.slice(sharedFolder.length), raw[name]!);
  return files;
}
