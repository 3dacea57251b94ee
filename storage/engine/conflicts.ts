// Replication between Couch nodes can leave a document with several leaf revisions. Couch
// picks a winner by revision history, which says nothing about what the user wrote last, so
// the engine resolves conflicts itself, deterministically, before anything reaches a client:
// every gateway, on every node, picks the same version.
import type { Doc, DocDb } from '../doc-db.js';
import { isRecordId, STATE_ID, type RecordDoc, type StateDoc } from './docs.js';

/** Records: the newest write wins (w, then modified), the revision id breaks a tie. */
export function pickRecord(versions: RecordDoc[]): RecordDoc {
  return versions.reduce((best, v) => {
    if (v.w !== best.w) return v.w > best.w ? v : best;
    if (v.m !== best.m) return v.m > best.m ? v : best;
    return (v._rev ?? '') > (best._rev ?? '') ? v : best;
  });
}

/**
 * State: every timestamp is the newest either side saw; a deletion wins over older writes. A
 * retirement mark is not carried: a conflict means both copies were written, so neither is a
 * copy a finished move left behind (the mover marks again if it still needs to).
 */
export function mergeStates(versions: StateDoc[]): StateDoc {
  const merged: StateDoc = { _id: STATE_ID, storage: 0, collections: {}, cleared: {}, clearedAll: 0, pending: null };
  for (const v of versions) {
    merged.storage = Math.max(merged.storage, v.storage);
    merged.clearedAll = Math.max(merged.clearedAll, v.clearedAll ?? 0);
    for (const [c, t] of Object.entries(v.collections ?? {})) merged.collections[c] = Math.max(merged.collections[c] ?? 0, t);
    for (const [c, t] of Object.entries(v.cleared ?? {})) merged.cleared[c] = Math.max(merged.cleared[c] ?? 0, t);
    const p = v.pending;
    const q = merged.pending;
    if (p && (!q || p.T > q.T || (p.T === q.T && (p.owner > q.owner || (p.owner === q.owner && p.lease > q.lease))))) merged.pending = p;
  }
  for (const [c, t] of Object.entries(merged.collections)) {
    if (t <= Math.max(merged.cleared[c] ?? 0, merged.clearedAll)) delete merged.collections[c];
  }
  return merged;
}

/**
 * Writes the resolved version on top of the current winner, then deletes the losing leaves.
 * Idempotent: two gateways resolving at once write the same content; one of them wins.
 * The losers go only once the resolved version is stored: deleted in the same request, a
 * write of the winner that lost a race would leave the document with no live revision, and
 * replicated that way a copy would read its state as never written.
 */
export async function resolveConflicts(db: DocDb, doc: Doc): Promise<void> {
  if (!doc._conflicts || doc._conflicts.length === 0) return;
  const losers = await db.revisions<Doc>(doc._id, doc._conflicts);
  const all = [doc, ...losers.filter((l) => !l._deleted)];
  let content: Doc;
  if (doc._id === STATE_ID) content = mergeStates(all as StateDoc[]);
  else if (isRecordId(doc._id)) content = pickRecord(all as RecordDoc[]);
  else content = doc; // batches, chunks, journals: the current winner is as good as any
  const { _conflicts: _c, _rev: _r, ...body } = content;
  const winner: Doc = { ...body, _id: doc._id, _rev: doc._rev as string };
  const [written] = await db.bulk([winner]);
  if (!written?.ok) return; // moved meanwhile: the caller reads it again
  await db.bulk(doc._conflicts.map((rev) => ({ _id: doc._id, _rev: rev, _deleted: true })));
}
