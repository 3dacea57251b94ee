// An in-memory index of one user's records: what listings, counts and usage need, without
// payloads. Measured on this kind of machine (shared/perf-baseline.md), a PouchDB map/reduce
// view answers ~96 listings/s for a 1,000-record user and reduce views ~40/s, and each view is
// a LevelDB of its own (open files); a scan of this index answers in microseconds. The index is
// brought up to date from the database's changes feed whenever the state document has moved,
// so it also follows writes made by another process or replicated in. Where no other process
// can write (the embedded store), it follows this process's writes instead: PouchDB's feed
// reads one document at a time, and under load a listing waited 0.2-1.6 s for it.
import type { Changes, Doc } from '../doc-db.js';
import { isRecordId, wellFormedRecord } from './docs.js';

export interface IndexEntry {
  id: string;
  m: number;
  w: number;
  n: number;
  s?: number;
  x?: number;
  rev: string;
}

export class RecordIndex {
  private readonly byCollection = new Map<string, Map<string, IndexEntry>>();
  seq: string | number = 0;
  /** _rev of the state document the index was last brought up to date for. */
  stateRev: string | undefined;
  /** No entry expires before this (ms); may be early after removals, never late. */
  earliestExpiry = Infinity;
  /** Per collection, the newest write stamp (w) ever seen: never lower than any entry's. */
  private readonly newestWrite = new Map<string, number>();

  /**
   * The newest write stamp in the collection. Above the committed timestamp, a write is in
   * flight (records applied, state not yet moved): its records replaced older versions that a
   * reader of the committed state would otherwise miss. Records created with their commit
   * (no pending state) are not counted: they replaced nothing.
   */
  newestWriteIn(collection: string): number {
    return this.newestWrite.get(collection) ?? 0;
  }

  /** Whether it has been brought up to date at least once (an empty index knows nothing). */
  built = false;

  apply(changes: Changes<Doc>): void {
    this.built = true;
    for (const doc of changes.docs) this.set(doc);
    this.seq = changes.lastSeq;
  }

  /**
   * Documents this process has just written, with the revisions they were given: the index of
   * a store no other process writes to follows its writes without reading them back.
   */
  written(docs: Doc[], revs: Array<string | undefined>): void {
    docs.forEach((doc, i) => {
      const rev = revs[i];
      if (rev !== undefined) this.set(doc, rev);
    });
  }

  private set(doc: Doc, rev = doc._rev): void {
    if (!isRecordId(doc._id)) return;
    if (doc._deleted) {
      this.remove(doc._id);
      return;
    }
    const r = wellFormedRecord(doc);
    if (!r) {
      this.remove(doc._id);
      return;
    }
    let entries = this.byCollection.get(r.c);
    if (!entries) this.byCollection.set(r.c, (entries = new Map()));
    const entry: IndexEntry = { id: r.i, m: r.m, w: r.w, n: r.n, rev: rev ?? '' };
    if (r.s !== undefined) entry.s = r.s;
    if (r.x !== undefined) {
      entry.x = r.x;
      if (r.x < this.earliestExpiry) this.earliestExpiry = r.x;
    }
    entries.set(r.i, entry);
    // A record created with its commit replaced nothing: uncommitted, it is only not listed.
    if (!r.f && r.w > (this.newestWrite.get(r.c) ?? 0)) this.newestWrite.set(r.c, r.w);
  }

  private remove(docId: string): void {
    const rest = docId.slice(2);
    const sep = rest.indexOf(':');
    this.byCollection.get(rest.slice(0, sep))?.delete(rest.slice(sep + 1));
  }

  entries(collection: string): Iterable<IndexEntry> {
    return this.byCollection.get(collection)?.values() ?? [];
  }

  get(collection: string, id: string): IndexEntry | undefined {
    return this.byCollection.get(collection)?.get(id);
  }

  collections(): Iterable<string> {
    return this.byCollection.keys();
  }

  get size(): number {
    let n = 0;
    for (const m of this.byCollection.values()) n += m.size;
    return n;
  }
}
