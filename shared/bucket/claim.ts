// Leases on uploads, so that of several consumers (queue redeliveries, parallel Workers,
// several `edgeflow watch` processes) exactly one converts a given upload at a time.
// Taking a lease is a create-if-absent write of status/uploads/<id>.claim; an expired or
// released lease is taken over with a write conditional on its etag. The holder renews the
// lease while it works (also conditional), so a crashed holder's upload is picked up again
// once its lease runs out, and a live holder is never overtaken.
import { PreconditionFailedError, type ObjectStore } from '../store/types.ts';
import { getJson, putJson } from '../store/util.ts';
import { uploadKeys } from './uploads.ts';

export const DEFAULT_LEASE_MS = 120_000;

interface ClaimDocument {
  owner: string;
  /** ms since epoch; 0 once released. */
  expires: number;
  taken: string;
}

export interface Lease {
  owner: string;
  /** True when the lease was still ours at the last renewal. */
  held(): boolean;
  /** Gives the lease up (conditional: never releases a lease someone else took over). */
  release(): Promise<void>;
}

export type ClaimResult = { lease: Lease } | { busy: { owner: string; expiresInMs: number } };

export async function claimUpload(store: ObjectStore, uploadId: string, owner: string, leaseMs = DEFAULT_LEASE_MS): Promise<ClaimResult> {
  const key = uploadKeys.claim(uploadId);
  const document = (): ClaimDocument => ({ owner, expires: Date.now() + leaseMs, taken: new Date().toISOString() });
  let etag: string;
  try {
    etag = (await putJson(store, key, document(), { ifNoneMatch: '*' })).etag;
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    const current = await getJson(store, key);
    const claim = current?.value as Partial<ClaimDocument> | undefined;
    const expires = typeof claim?.expires === 'number' ? claim.expires : 0;
    // Our own write whose answer was lost (a retried put): the lease is ours.
    if (current && claim?.owner === owner && expires > Date.now()) etag = current.etag;
    else if (current && expires > Date.now()) return { busy: { owner: String(claim?.owner), expiresInMs: expires - Date.now() } };
    else {
      try {
        etag = (await putJson(store, key, document(), current ? { ifMatch: current.etag } : { ifNoneMatch: '*' })).etag;
      } catch (raced) {
        if (!(raced instanceof PreconditionFailedError)) throw raced;
        const winner = (await getJson(store, key))?.value as Partial<ClaimDocument> | undefined;
        return { busy: { owner: String(winner?.owner), expiresInMs: Math.max(0, (winner?.expires ?? 0) - Date.now()) } };
      }
    }
  }

  let held = true;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = renewing.then(async () => {
        if (!held) return;
        try {
          etag = (await putJson(store, key, document(), { ifMatch: etag })).etag;
        } catch (error) {
          // Lost (another consumer took over after we stalled) or the store is down: stop claiming it.
          if (error instanceof PreconditionFailedError) held = false;
        }
      });
    },
    Math.max(50, leaseMs / 3),
  );
  (timer as { unref?: () => void }).unref?.();

  return {
    lease: {
      owner,
      held: () => held,
      release: async () => {
        clearInterval(timer);
        await renewing;
        if (!held) return;
        held = false;
        await putJson(store, key, { owner, expires: 0, taken: new Date().toISOString() } satisfies ClaimDocument, { ifMatch: etag }).catch(() => undefined);
      },
    },
  };
}
