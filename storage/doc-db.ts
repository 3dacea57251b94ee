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
  /** Documents with startId <= _id <= endId, in _id order. */
  range<T extends Doc>(startId: string, endId: string, limit?: number): Promise<T[]>;
  /** Latest version of every document changed since `since` (0: all of them). */
  changes<T extends Doc>(since: string | number): Promise<Changes<T>>;
  /** The given leaf revisions of one document (to resolve replication conflicts). */
  revisions<T extends Doc>(id: string, revs: string[]): Promise<T[]>;
}

/** A document as it may be written: _conflicts is read-only and Couch refuses it on writes. */
export function writable(doc: Doc): Doc {
  if (!('_conflicts' in doc)) return doc;
  const { _conflicts: _c, ...rest } = doc;
  return rest;
}
