// sha256 with the Web Crypto API, available both in Workers and in Node 20.
import { hex } from './bytes.ts';

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return hex(new Uint8Array(digest));
}
