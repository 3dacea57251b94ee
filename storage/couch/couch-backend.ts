// User databases on a Couch node over HTTP. Many gateways may share the node: nothing here
// assumes this process is the only writer (the engine's compare-and-swap on `state` does).
import { randomBytes } from 'node:crypto';
import { designDoc } from '../../couch-design/index.js';
import { userDbName } from '../db-name.js';
import type { DocDb } from '../doc-db.js';
import type { Backend } from '../engine/backend.js';
import { emptyState } from '../engine/docs.js';
import { CouchError, type CouchClient } from './couch-client.js';
import { CouchDocDb } from './couch-doc-db.js';
import { DbUpdatesFeed } from './db-updates.js';

/** What a node says of itself: Apache CouchDB's version and features, or pouchdb-server's. */
export interface CouchInfo {
  vendor: 'couchdb' | 'pouchdb-server';
  version: string;
  features: string[];
  /** Whether it offers `_db_updates` (reads may then reuse cached states: db-updates.ts). */
  updates: boolean;
}

interface Security {
  admins?: { names?: string[]; roles?: string[] };
  members?: { names?: string[]; roles?: string[] };
}

export class CouchBackend implements Backend {
  readonly exclusive = false;
  /** The pool checks the design document version in the background, not on the request path. */
  readonly installDesignInBackground = true;

  readonly updates: DbUpdatesFeed;

  constructor(private readonly client: CouchClient) {
    this.updates = new DbUpdatesFeed(client);
  }

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
        // One shard: a user database holds a few thousand documents, and 3.x's default of two
        // doubles its files and merges every query (pouchdb-server ignores the parameter).
        await this.client.request({ method: 'PUT', db: name, qs: { q: 1 } });
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

  async exists(uid: string): Promise<boolean> {
    try {
      await this.client.request({ method: 'HEAD', db: userDbName(uid) });
      return true;
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 404) return false;
      throw e;
    }
  }

  async check(): Promise<void> {
    await this.client.request({ method: 'GET' });
  }

  /**
   * At start and before a node is added: the node is reachable, is a Couch we support, our
   * user is a server admin, and a probe database takes syncgate's design document and a state
   * document.
   * `probe` runs further checks on that database before it is deleted.
   */
  async verify(opts: { probe?: (db: string) => Promise<void> } = {}): Promise<CouchInfo> {
    const where = this.client.publicUrl;
    let welcome: { couchdb?: string; version?: string; features?: string[]; 'express-pouchdb'?: string };
    try {
      welcome = await this.client.request({ method: 'GET' });
    } catch (e) {
      if (e instanceof CouchError && e.statusCode === 401) throw new Error(`Couch at ${where} refused the credentials in COUCH_URL`);
      throw new Error(`cannot reach Couch at ${where}: ${(e as Error).message}`);
    }
    const [major, minor] = String(welcome.version ?? '').split('.').map(Number) as [number, number];
    const isPouchServer = welcome['express-pouchdb'] !== undefined;
    const isCouch = !isPouchServer && welcome.couchdb === 'Welcome';
    if (isCouch && !(major === 3 && minor >= 3)) {
      throw new Error(`${where} runs Apache CouchDB ${welcome.version}: syncgate needs 3.3 or newer 3.x`);
    }
    if (!isCouch && !isPouchServer) {
      throw new Error(`${where} is not a supported Couch (need Apache CouchDB 3.3+ or pouchdb-server; got ${JSON.stringify(welcome).slice(0, 120)})`);
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
    const probe = `syncgate_probe_${randomBytes(6).toString('hex')}`;
    try {
      try {
        await this.ensureDatabase(probe);
      } catch (e) {
        throw new Error(`cannot create a database on ${where}: ${(e as Error).message}`);
      }
      try {
        await this.probeDesign(probe);
      } catch (e) {
        throw new Error(`Couch at ${where} refused syncgate's design document: ${(e as Error).message}`);
      }
      await opts.probe?.(probe);
    } finally {
      await this.client.request({ method: 'DELETE', db: probe }).catch(() => undefined); // best effort
    }
    const updates = await this.client.request({ method: 'GET', path: '_db_updates', qs: { feed: 'normal', since: 'now' }, retries: 0 }).then(
      () => true,
      () => false,
    );
    return isCouch
      ? { vendor: 'couchdb', version: String(welcome.version), features: Array.isArray(welcome.features) ? welcome.features.map(String) : [], updates }
      : { vendor: 'pouchdb-server', version: String(welcome.version), features: [], updates };
  }

  /** What every user database needs: the design document and a state document, tried on a throw-away database. */
  private async probeDesign(name: string): Promise<void> {
    const db = new CouchDocDb(this.client, name, async () => {});
    if ((await designDoc.install(db)) !== 'installed') throw new Error('it was not written');
    if ((await db.put(emptyState())) === 'conflict') throw new Error('a state document could not be written');
  }

  async shutdown(): Promise<void> {
    this.updates.stop();
  }
}
