// The few document operations the storage engine needs from a user database. PouchDB and
// CouchDB (nano) both provide them; the engine never sees which one it talks to.

export interface Doc {
  _id: string;
  _rev?: string;
  _deleted?: boolean;
  /** Losing revisions that replication left beside the winner, when asked for. */
  _conflicts?: string[];
}

export interface BulkResult {
  id: string;
  ok: boolean;
  /** True when the write lost a compare-and-swap on _rev. */
  conflict: boolean;
  rev?: string;
}

/** A leaf revision of a document, with the body it still has (its parent's, for a deletion). */
export interface Leaf<T> {
  rev: string;
  deleted: boolean;
  body?: T;
}

export interface Changes<T> {
  docs: Array<T | (Doc & { _deleted: true })>;
  lastSeq: string | number;
}

export interface DocDb {
  get<T extends Doc>(id: string): Promise<T | undefined>;
  getMany<T extends Doc>(ids: string[]): Promise<Map<string, T>>;
  /** Compare-and-swap on _rev: resolves the new rev, or 'conflict'. */
  put(doc: Doc): Promise<string | 'conflict'>;
  bulk(docs: Doc[]): Promise<BulkResult[]>;
  /**
   * Documents with startId <= _id <= endId, in _id order; `descending`: from endId down (the
   * newest first of ids that sort by time, without reading the older ones).
   */
  range<T extends Doc>(startId: string, endId: string, limit?: number, descending?: boolean): Promise<T[]>;
  /** Latest version of every document changed since `since` (0: all of them). */
  changes<T extends Doc>(since: string | number): Promise<Changes<T>>;
  /**
   * Every live document with startId <= _id <= endId (with _conflicts), and a sequence from
   * which changes() brings them up to date: a cheaper start than changes(0) where the feed
   * reads one document at a time (PouchDB on LevelDB, which also walks every tombstone).
   */
  snapshot?<T extends Doc>(startId: string, endId: string): Promise<Changes<T>>;
  /** The given leaf revisions of one document (to resolve replication conflicts). */
  revisions<T extends Doc>(id: string, revs: string[]): Promise<T[]>;
  /**
   * Every leaf of a document that reads as not found: none if it was never written. For a
   * deleted leaf, the body is its parent's, where still stored.
   */
  leaves<T extends Doc>(id: string): Promise<Leaf<T>[]>;
}

type OpenRev<T> = { ok?: T & { _revisions?: { start: number; ids: string[] } }; missing?: string };

/** The leaves of an `open_revs=all&revs=true` answer; `fetch` reads one revision (undefined if gone). */
export async function leavesOf<T extends Doc>(open: OpenRev<T>[], fetch: (rev: string) => Promise<T | undefined>): Promise<Leaf<T>[]> {
  const leaves: Leaf<T>[] = [];
  for (const r of open) {
    if (r.missing) {
      leaves.push({ rev: r.missing, deleted: false });
      continue;
    }
    const doc = r.ok;
    if (!doc?._rev) continue;
    if (!doc._deleted) {
      const { _revisions: _r, ...body } = doc;
      leaves.push({ rev: doc._rev, deleted: false, body: body as T });
      continue;
    }
    const history = doc._revisions;
    const parent = history && history.ids.length > 1 ? await fetch(`${history.start - 1}-${history.ids[1]}`) : undefined;
    leaves.push({ rev: doc._rev, deleted: true, ...(parent && !parent._deleted ? { body: parent } : {}) });
  }
  return leaves;
}

/** A document as it may be written: _conflicts is read-only and Couch refuses it on writes. */
export function writable(doc: Doc): Doc {
  if (!('_conflicts' in doc)) return doc;
  const { _conflicts: _c, ...rest } = doc;
  return rest;
}
