// Failback copies the records only the returning node had to the serving copy, then gives them
// new timestamps. A failback stopped between the two (a gateway crash, a node timing out)
// would leave them copied with their old timestamps, and the next attempt copies nothing, so
// it restamps nothing: a device that synced from the serving copy meanwhile would never list
// them. So the records are noted on the serving copy before they are written there, in a
// _local document (never replicated), and the note is cleared only once they are restamped.
import { userDbName } from '../storage/db-name.js';
import { CouchError, type CouchClient } from '../storage/couch/couch-client.js';
import type { Doc } from '../storage/doc-db.js';
import { isRecordId } from '../storage/engine/docs.js';

const INTENT_ID = '_local/syncgate-failback-restamp';
const ATTEMPTS = 5;

/** What the restamp needs of a record: which version it is. */
export interface NotedRecord extends Doc {
  c: string;
  i: string;
  w: number;
  m: number;
}

interface IntentDoc extends Doc {
  records: NotedRecord[];
}

export class RestampIntent {
  private readonly db: string;

  constructor(
    private readonly client: CouchClient,
    uid: string,
  ) {
    this.db = userDbName(uid);
  }

  private async read(): Promise<IntentDoc | undefined> {
    try {
      return await this.client.request<IntentDoc>({ method: 'GET', db: this.db, doc: INTENT_ID });
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 404) return undefined;
      throw e;
    }
  }

  /** Records noted by a failback that did not finish. */
  async pending(): Promise<NotedRecord[]> {
    return (await this.read())?.records ?? [];
  }

  /** Notes the records among docs (live record documents), before they are written. */
  async note(docs: Doc[]): Promise<void> {
    const records = docs
      .filter((d) => !d._deleted && isRecordId(d._id))
      .map((d) => {
        const r = d as NotedRecord;
        return { _id: r._id, c: r.c, i: r.i, w: r.w, m: r.m };
      });
    if (records.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      const current = await this.read();
      const byId = new Map((current?.records ?? []).map((r) => [`${r._id}\n${r.w}`, r]));
      for (const r of records) byId.set(`${r._id}\n${r.w}`, r);
      const next: IntentDoc = { _id: INTENT_ID, records: [...byId.values()] };
      if (current?._rev) next._rev = current._rev;
      try {
        await this.client.request({ method: 'PUT', db: this.db, doc: INTENT_ID, body: next });
        return;
      } catch (e) {
        if (!(e instanceof CouchError && e.statusCode === 409) || attempt >= ATTEMPTS) throw e;
      }
    }
  }

  /** The noted records are restamped: forget them. */
  async clear(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.read();
      if (!current?._rev) return;
      try {
        await this.client.request({ method: 'DELETE', db: this.db, doc: INTENT_ID, qs: { rev: current._rev } });
        return;
      } catch (e) {
        if (!(e instanceof CouchError && (e.statusCode === 409 || e.statusCode === 404)) || attempt >= ATTEMPTS) throw e;
      }
    }
  }
}
