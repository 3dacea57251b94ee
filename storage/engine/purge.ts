// Background removal of what no reader can see any more: expired records, records of deleted
// collections or storage, dead batches and stray journals. Small slices, so a user with a huge
// deleted collection never stalls the database; correctness never depends on it running.
import type { Doc } from '../doc-db.js';
import { chunkRange, type BatchDoc, type StateDoc } from './docs.js';
import { deletionFloor } from './records.js';
import type { UserDb } from './user-db.js';

export const PURGE_SLICE = 100;

export async function purgeSlice(u: UserDb, s: StateDoc, now: number): Promise<number> {
  await u.refreshIndex(s);
  const dead: Doc[] = [];
  let earliest = Infinity;
  let complete = true;
  outer: for (const c of u.index.collections()) {
    const floor = deletionFloor(s, c);
    for (const e of u.index.entries(c)) {
      if (e.w <= floor || (e.x !== undefined && e.x <= now)) {
        // With the revision the index saw: a record rewritten meanwhile is left alone.
        dead.push({ _id: `r:${c}:${e.id}`, _rev: e.rev, _deleted: true });
        if (dead.length >= PURGE_SLICE) {
          complete = false;
          break outer;
        }
      } else if (e.x !== undefined && e.x < earliest) {
        earliest = e.x;
      }
    }
  }
  if (complete) u.index.earliestExpiry = earliest;
  let removed = 0;
  if (dead.length > 0) removed += (await u.db.bulk(dead)).filter((r) => r.ok).length;

  let batchExpiry = Infinity;
  for (const batch of await u.db.range<BatchDoc>('b:', 'b:\uffff', PURGE_SLICE)) {
    if (batch.expires > now && batch.created > deletionFloor(s, batch.collection)) {
      batchExpiry = Math.min(batchExpiry, batch.expires);
      continue;
    }
    const [start, end] = chunkRange(batch._id.slice(2));
    const chunks = await u.db.range<Doc>(start, end);
    await u.deleteDocs(chunks);
    await u.deleteDocs([batch]);
    removed += chunks.length + 1;
  }

  // Journals of writes that are committed; one newer than the storage timestamp may belong
  // to a write another gateway is starting right now.
  const journals = await u.db.range<Doc>('j:', 'j:\uffff', PURGE_SLICE);
  const stray = journals.filter((j) => j._id !== s.pending?.journal && Number(j._id.split(':')[1]) <= s.storage);
  await u.deleteDocs(stray);
  // Nothing left for a later slice: the user is skipped until it writes or a record expires.
  if (complete && dead.length < PURGE_SLICE) {
    u.purgedRev = s._rev;
    u.batchExpiry = batchExpiry;
  }
  return removed + stray.length;
}
