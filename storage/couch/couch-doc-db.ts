// DocDb on one user database of a Couch node, over HTTP. Reads ask for _conflicts so the
// engine can resolve revisions that replication brought in before anything reaches a client.
import { leavesOf, writable, type BulkResult, type Changes, type Doc, type DocDb, type Leaf } from '../doc-db.js';
import { CouchError, type CouchClient, type CouchRequest } from './couch-client.js';

interface Row<T> {
  key: string;
  doc?: T | null;
  error?: string;
  value?: { rev: string; deleted?: boolean };
}

/** CouchDB says "Database does not exist.", pouchdb-server "no_db_file"; a missing document is "missing"/"deleted". */
const missingDatabase = (e: unknown): boolean =>
  e instanceof CouchError && e.statusCode === 404 && (e.reason === 'Database does not exist.' || e.reason === 'no_db_file');

export class CouchDocDb implements DocDb {
  private ensured: Promise<void> | undefined;
  private retired = false;

  constructor(
    private readonly client: CouchClient,
    readonly name: string,
    /** Creates the database (first use); called when Couch answers that it does not exist. */
    private readonly create: () => Promise<void>,
  ) {}

  /**
   * Closed by the pool (evicted or destroyed): a background task still holding this object
   * (a design check, a purge slice) must not create the database again after its deletion.
   */
  retire(): void {
    this.retired = true;
  }

  /**
   * Runs a request; for a write (`create`), a missing database is created once and the write
   * retried. Reads never create one: a database deleted under this gateway (a copy a move left
   * behind) stays deleted, and a user who only reads an empty storage costs no database.
   */
  private async call<T>(req: CouchRequest, create = false): Promise<T> {
    try {
      return await this.client.request<T>(req);
    } catch (e) {
      if (!missingDatabase(e) || this.retired || !create) throw e;
      this.ensured ??= this.create().finally(() => (this.ensured = undefined));
      await this.ensured;
      return this.client.request<T>(req);
    }
  }

  async get<T extends Doc>(id: string): Promise<T | undefined> {
    try {
      return await this.call<T>({ method: 'GET', db: this.name, doc: id, qs: { conflicts: true } });
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 404) return undefined;
      throw e;
    }
  }

  async getMany<T extends Doc>(ids: string[]): Promise<Map<string, T>> {
    const found = new Map<string, T>();
    if (ids.length === 0) return found;
    let res: { rows: Row<T>[] };
    try {
      res = await this.call<{ rows: Row<T>[] }>({
        method: 'POST',
        db: this.name,
        path: '_all_docs',
        qs: { include_docs: true, conflicts: true },
        body: { keys: ids },
      });
    } catch (e) {
      if (missingDatabase(e)) return found;
      throw e;
    }
    for (const row of res.rows) if (row.doc) found.set(row.doc._id, row.doc);
    return found;
  }

  async put(doc: Doc): Promise<string | 'conflict'> {
    try {
      const res = await this.call<{ rev: string }>({ method: 'PUT', db: this.name, doc: doc._id, body: writable(doc) }, true);
      return res.rev;
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 409) return 'conflict';
      throw e;
    }
  }

  async bulk(docs: Doc[]): Promise<BulkResult[]> {
    if (docs.length === 0) return [];
    const res = await this.call<Array<{ id: string; rev?: string; error?: string }>>(
      { method: 'POST', db: this.name, path: '_bulk_docs', body: { docs: docs.map(writable) } },
      true,
    );
    return res.map((r, i) => {
      const id = r.id ?? docs[i]?._id ?? '';
      if (r.error) return { id, ok: false, conflict: r.error === 'conflict' };
      const result: BulkResult = { id, ok: true, conflict: false };
      if (r.rev) result.rev = r.rev;
      return result;
    });
  }

  async range<T extends Doc>(startId: string, endId: string, limit?: number, descending = false): Promise<T[]> {
    const qs: Record<string, unknown> = descending ? { startkey: endId, endkey: startId, descending: true, include_docs: true } : { startkey: startId, endkey: endId, include_docs: true };
    if (limit !== undefined) qs.limit = limit;
    let res: { rows: Row<T>[] };
    try {
      res = await this.call<{ rows: Row<T>[] }>({ method: 'GET', db: this.name, path: '_all_docs', qs });
    } catch (e) {
      if (missingDatabase(e)) return [];
      throw e;
    }
    return res.rows.flatMap((r) => (r.doc ? [r.doc] : []));
  }

  async changes<T extends Doc>(since: string | number): Promise<Changes<T>> {
    type Feed = { results: Array<{ id: string; deleted?: boolean; doc?: T }>; last_seq: string | number };
    let res: Feed;
    try {
      res = await this.call<Feed>({ method: 'GET', db: this.name, path: '_changes', qs: { since, include_docs: true, conflicts: true } });
    } catch (e) {
      if (missingDatabase(e)) return { docs: [], lastSeq: since };
      throw e;
    }
    const docs = res.results.map((r) => (r.deleted || !r.doc ? { _id: r.id, _deleted: true as const } : r.doc));
    return { docs, lastSeq: res.last_seq };
  }

  async revisions<T extends Doc>(id: string, revs: string[]): Promise<T[]> {
    let res: Array<{ ok?: T }>;
    try {
      res = await this.call<Array<{ ok?: T }>>({ method: 'GET', db: this.name, doc: id, qs: { open_revs: JSON.stringify(revs) } });
    } catch (e) {
      if (missingDatabase(e)) return [];
      throw e;
    }
    return res.flatMap((r) => (r.ok ? [r.ok] : []));
  }

  async leaves<T extends Doc>(id: string): Promise<Leaf<T>[]> {
    let open: Array<{ ok?: T; missing?: string }>;
    try {
      open = await this.call({ method: 'GET', db: this.name, doc: id, qs: { open_revs: 'all', revs: true } });
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 404) return [];
      throw e;
    }
    return leavesOf<T>(open, async (rev) => {
      try {
        return await this.call<T>({ method: 'GET', db: this.name, doc: id, qs: { rev } });
      } catch (e) {
        if (e instanceof CouchError && e.statusCode === 404) return undefined;
        throw e;
      }
    });
  }
}
