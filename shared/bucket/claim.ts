// Leases on uploads, so that of several consumers (queue redeliveries, parallel Workers,
// several `edgeflow watch` processes) exactly one converts a given upload at a time.
// Taking a lease is a create-if-absent write of status/uploads/<id>.claim; an expired or
// released lease is taken over with a write conditional on its etag. The holder renews the
// lease (a heartbeat, also conditional) every third of its length while it works, so a live
// holder is never overtaken and a crashed one's upload is picked up again once its lease runs
// out; renew() checks it is still held right before publishing.
import { EdgeflowError } from '../errors.ts';
import { PreconditionFailedError, type ObjectStore } from '../store/types.ts';
import { getJson, putJson } from '../store/util.ts';
import { uploadKeys } from './uploads.ts';
import { DEFAULT_LEASE_MS } from '../options/serving.ts';

/** Heartbeats per lease length: a holder survives two lost renewals. */
const HEARTBEATS_PER_LEASE = 3;

/** Longest lease a consumer extends its own to after takeovers (converter/consumer.ts). */
export const MAX_LEASE_MS = 3_600_000;

/** Shortest lease: its heartbeats must outlast a store round trip and a busy event loop. */
export const MIN_LEASE_MS = 1000;

/** A lease length as given by a user (--lease): at least MIN_LEASE_MS. */
export function checkLeaseMs(ms: number): number {
  if (!Number.isFinite(ms) || ms < MIN_LEASE_MS) throw new EdgeflowError('bad_request', `--lease ${ms} ms is too short: give at least ${MIN_LEASE_MS / 1000}s (heartbeats renew it every third)`);
  return ms;
}

interface ClaimDocument {
  owner: string;
  /** ms since epoch; 0 once released. */
  expires: number;
  taken: string;
  /** Last renewal (ISO time). */
  renewed?: string;
}

export interface Lease {
  owner: string;
  /** True when the lease was still ours at the last renewal. */
  held(): boolean;
  /** Renews the lease now; false when someone else holds it (took it over after we stalled). */
  renew(): Promise<boolean>;
  /** Gives the lease up (conditional: never releases a lease someone else took over). */
  release(): Promise<void>;
}

export type ClaimResult = { lease: Lease } | { busy: { owner: string; expiresInMs: number } };

async function currentClaim(store: ObjectStore, key: string) {
  const found = await getJson(store, key);
  const claim = found?.value as Partial<ClaimDocument> | undefined;
  return { found, owner: String(claim?.owner), expires: typeof claim?.expires === 'number' ? claim.expires : 0 };
}

/** Who holds the upload's lease and until when (expires 0: released); null when none was taken. */
export async function readLease(store: ObjectStore, uploadId: string): Promise<{ owner: string; expires: number; renewed?: string } | null> {
  const current = await currentClaim(store, uploadKeys.claim(uploadId));
  if (!current.found) return null;
  const renewed = (current.found.value as Partial<ClaimDocument>).renewed;
  return { owner: current.owner, expires: current.expires, ...(typeof renewed === 'string' ? { renewed } : {}) };
}

/** Takes the upload's lease for owner, or says who holds it and for how much longer. */
export async function claimUpload(store: ObjectStore, uploadId: string, owner: string, leaseMs = DEFAULT_LEASE_MS): Promise<ClaimResult> {
  const key = uploadKeys.claim(uploadId);
  const taken = new Date().toISOString();
  const document = (): ClaimDocument => ({ owner, expires: Date.now() + leaseMs, taken, renewed: new Date().toISOString() });
  let etag: string;
  try {
    etag = (await putJson(store, key, document(), { ifNoneMatch: '*' })).etag;
  } catch (error) {
    if (!(error instanceof PreconditionFailedError)) throw error;
    const current = await currentClaim(store, key);
    // Our own write whose answer was lost (a retried put): the lease is ours.
    if (current.found && current.owner === owner && current.expires > Date.now()) etag = current.found.etag;
    else if (current.found && current.expires > Date.now()) return { busy: { owner: current.owner, expiresInMs: current.expires - Date.now() } };
    else {
      try {
        etag = (await putJson(store, key, document(), current.found ? { ifMatch: current.found.etag } : { ifNoneMatch: '*' })).etag;
      } catch (raced) {
        if (!(raced instanceof PreconditionFailedError)) throw raced;
        const winner = await currentClaim(store, key);
        return { busy: { owner: winner.owner, expiresInMs: Math.max(0, winner.expires - Date.now()) } };
      }
    }
  }

  let held = true;
  let renewing: Promise<void> = Promise.resolve();
  /** One renewal at a time, in order: a conditional write on the etag of our last one. */
  const renew = (): Promise<boolean> => {
    renewing = renewing.then(async () => {
      if (!held) return;
      try {
        etag = (await putJson(store, key, document(), { ifMatch: etag })).etag;
      } catch (error) {
        // Lost (another consumer took over after we stalled); a store that is down keeps the lease until it expires.
        if (error instanceof PreconditionFailedError) held = false;
      }
    });
    return renewing.then(() => held);
  };
  const timer = setInterval(() => void renew(), Math.max(50, leaseMs / HEARTBEATS_PER_LEASE));
  (timer as { unref?: () => void }).unref?.();

  return {
    lease: {
      owner,
      held: () => held,
      renew,
      release: async () => {
        clearInterval(timer);
        await renewing;
        if (!held) return;
        held = false;
        await putJson(store, key, { owner, expires: 0, taken } satisfies ClaimDocument, { ifMatch: etag }).catch(() => undefined);
      },
    },
  };
}
