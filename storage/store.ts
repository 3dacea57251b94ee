// The storage contract. The HTTP layer speaks only to this interface; every backend
// (embedded PouchDB, Couch over HTTP) implements it and passes the same contract suite
// (test/store/contract.test.ts). All timestamps are integer milliseconds, multiples of 10.

/** A record as the client sent it, already validated. Absent fields are undefined. */
export interface BsoInput {
  id: string;
  payload?: string;
  sortindex?: number;
  /** Seconds; expiry is the write (or batch commit) timestamp plus this. */
  ttl?: number;
}

/** A record as it is returned to clients. */
export interface Bso {
  id: string;
  modified: number;
  payload: string;
  sortindex?: number;
}

export type SortOrder = 'newest' | 'oldest' | 'index';

export interface ListQuery {
  ids?: string[];
  newer?: number;
  older?: number;
  full: boolean;
  limit?: number;
  /** Opaque token from a previous nextOffset; malformed ones are a 'bad-request'. */
  offset?: string;
  sort?: SortOrder;
}

export interface Preconditions {
  ifModifiedSince?: number;
  ifUnmodifiedSince?: number;
}

export interface StorageInfo {
  /** Storage timestamp: newest of every collection and of the last deletion. */
  storage: number;
  collections: Record<string, number>;
}

export interface UsageInfo {
  /** Payload bytes per collection, live records only. */
  bytes: Record<string, number>;
  counts: Record<string, number>;
  totalBytes: number;
  /** Configured quota in bytes, or undefined when quotas are off. */
  quotaBytes?: number;
}

export interface ListResult {
  lastModified: number;
  items: Bso[] | string[];
  nextOffset?: string;
}

export interface WriteResult {
  modified: number;
  success: string[];
  failed: Record<string, string>;
  /** Bytes left under the quota after this write, when quotas are on. */
  quotaRemaining?: number;
}

export interface BatchAccepted {
  batch: string;
  /** The collection's timestamp, unchanged by staging. */
  lastModified: number;
  success: string[];
  failed: Record<string, string>;
}

/** What a POST carries besides its records: the per-item failures found while parsing. */
export interface PostInput {
  records: BsoInput[];
  failed: Record<string, string>;
}

export interface Store {
  info(uid: string, pre: Preconditions): Promise<StorageInfo>;
  usage(uid: string, pre: Preconditions): Promise<UsageInfo & { lastModified: number }>;

  list(uid: string, collection: string, query: ListQuery, pre: Preconditions): Promise<ListResult>;
  get(uid: string, collection: string, id: string, pre: Preconditions): Promise<Bso>;
  put(uid: string, collection: string, record: BsoInput, pre: Preconditions): Promise<WriteResult>;
  post(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<WriteResult>;

  openBatch(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted>;
  appendBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted>;
  commitBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<WriteResult>;

  deleteItem(uid: string, collection: string, id: string, pre: Preconditions): Promise<number>;
  /** Returns the new collection timestamp (or the storage timestamp when the collection is absent). */
  deleteItems(uid: string, collection: string, ids: string[], pre: Preconditions): Promise<number>;
  /** Returns the new storage timestamp. */
  deleteCollection(uid: string, collection: string, pre: Preconditions): Promise<number>;
  /** Deletes every collection, record and batch of the user; returns the new storage timestamp. */
  deleteAll(uid: string, pre: Preconditions): Promise<number>;

  /** Throws when the store cannot serve (for __heartbeat__). */
  check(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreLimits {
  maxTotalRecords: number;
  maxTotalBytes: number;
  /** 0 turns quotas off. */
  quotaBytes: number;
  batchLifetimeMs: number;
}
