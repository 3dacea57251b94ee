// User databases on a Couch node over HTTP. Many gateways may share the node: nothing here
// assumes this process is the only writer (the engine's compare-and-swap on `state` does).
import { designDoc } from '../../couch-design/index.js';
import { userDbName } from '../db-name.js';
import type { DocDb } from '../doc-db.js';
import type { Backend } from '../engine/backend.js';
import { CouchError, type CouchClient } from './couch-client.js';
import { CouchDocDb } from './couch-doc-db.js';

interface Security {
  admins?: { names?: string[]; roles?: string[] };
  members?: { names?: string[]; roles?: string[] };
}

export class CouchBackend implements Backend {
  readonly exclusive = false;
  /** The pool checks the design document version in the background, not on the request path. */
  readonly installDesignInBackground = true;

  constructor(private readonly client: CouchClient) {}

  /** Each user database is closed to everyone but the gateway's own Couch user. */
  private security(): Security {
    const who = this.client.user ? { names: [this.client.user], roles: [] } : { names: [], roles: ['_admin'] };
    return { admins: who, members: who };
  }

  /**
   * Costs no request: a user's database is created when Couch first answers that it does not
   * exist, so a user who comes back into the gateway's pool pays nothing for it.
   */
  async open(uid: string): Promise<DocDb> {
    const name = userDbName(uid);
    const db = new CouchDocDb(this.client, name, async () => {
      await this.ensureDatabase(name);
      await designDoc.install(db);
    });
    return db;
  }

  /** Creates the database; closes its _security to everyone but the gateway's Couch user. */
  async ensureDatabase(name: string): Promise<void> {
    let current: Security | undefined;
    try {
      current = await this.client.request<Security>({ method: 'GET', db: name, path: '_security' });
    } catch (e) {
      if (!(e instanceof CouchError && e.statusCode === 404)) throw e;
      try {
        await this.client.request({ method: 'PUT', db: name });
      } catch (err) {
        if (!(err instanceof CouchError && err.statusCode === 412)) throw err; // created meanwhile
      }
    }
    const wanted = this.security();
    const same = (s: Security | undefined) =>
      JSON.stringify(s?.members) === JSON.stringify(wanted.members) && JSON.stringify(s?.admins) === JSON.stringify(wanted.admins);
    for (let attempt = 0; !same(current); attempt++) {
      try {
        await this.client.request({ method: 'PUT', db: name, path: '_security', body: wanted });
        return;
      } catch (e) {
        // Another gateway creating the same user's database set it first (pouchdb-server: 409).
        if (!(e instanceof CouchError && e.statusCode === 409) || attempt >= 3) throw e;
        current = await this.client.request<Security>({ method: 'GET', db: name, path: '_security' });
      }
    }
  }

  async close(_uid: string, db: DocDb): Promise<void> {
    (db as CouchDocDb).retire();
  }

  async destroy(uid: string): Promise<void> {
    try {
      await this.client.request({ method: 'DELETE', db: userDbName(uid) });
    } catch (e) {
      if (!(e instanceof CouchError && e.statusCode === 404)) throw e;
    }
  }

  async check(): Promise<void> {
    await this.client.request({ method: 'GET' });
  }

  /** At start: the node is reachable, is a Couch we support, and our user may create databases. */
  async verify(): Promise<void> {
    const where = this.client.publicUrl;
    let welcome: { couchdb?: string; version?: string; 'express-pouchdb'?: string };
    try {
      welcome = await this.client.request({ method: 'GET' });
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 401) throw new Error(`Couch at ${where} refused the credentials in COUCH_URL`);
      throw new Error(`cannot reach Couch at ${where}: ${(e as Error).message}`);
    }
    const major = Number(String(welcome.version ?? '').split('.')[0]);
    const isCouch = welcome.couchdb === 'Welcome' && major >= 3;
    const isPouchServer = welcome['express-pouchdb'] !== undefined;
    if (!isCouch && !isPouchServer) {
      throw new Error(`${where} is not a supported Couch (need Apache CouchDB 3.x or pouchdb-server; got ${JSON.stringify(welcome).slice(0, 120)})`);
    }
    let session: { userCtx?: { name?: string | null; roles?: string[] } };
    try {
      session = await this.client.request({ method: 'GET', path: '_session' });
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 401) throw new Error(`Couch at ${where} refused the credentials in COUCH_URL`);
      throw e;
    }
    if (!session.userCtx?.roles?.includes('_admin')) {
      const who = session.userCtx?.name ?? 'anonymous';
      throw new Error(`Couch user ${who} at ${where} is not a server admin: syncgate needs admin rights to create user databases`);
    }
  }

  async shutdown(): Promise<void> {}
}
