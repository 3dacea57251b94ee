// The registry's event log (federation/event-log.ts), on the embedded registry (PouchDB) and on
// a Couch (pouchdb-server, or Apache CouchDB with COUCHDB_HOME): the newest events come first
// and only as many as asked for; a week-old event is pruned, a newer one kept.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import PouchDB from 'pouchdb';
import { EventLog } from '../../federation/event-log.js';
import { CouchClient } from '../../storage/couch/couch-client.js';
import { CouchDocDb } from '../../storage/couch/couch-doc-db.js';
import type { DocDb } from '../../storage/doc-db.js';
import { PouchDocDb } from '../../storage/pouch/pouch-doc-db.js';
import { testCouchUrl } from '../support/couch.js';

const DAY = 86_400_000;

const backends: Array<{ name: string; open(): Promise<{ db: DocDb; close(): Promise<void> }> }> = [
  {
    name: 'embedded registry (PouchDB)',
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'syncgate-events-'));
      const pouch = new PouchDB(join(dir, 'registry'));
      return { db: new PouchDocDb(pouch), close: async () => (await pouch.close(), await rm(dir, { recursive: true, force: true })) };
    },
  },
  {
    name: 'registry on a Couch',
    async open() {
      const client = new CouchClient(await testCouchUrl(), { timeoutMs: 10_000, readRetries: 1 });
      const name = `syncgate_events_${randomBytes(4).toString('hex')}`;
      await client.request({ method: 'PUT', db: name });
      return { db: new CouchDocDb(client, name, async () => {}), close: async () => void (await client.request({ method: 'DELETE', db: name })) };
    },
  },
];

for (const backend of backends) {
  describe(`registry event log: recordEvent / recentEvents on the ${backend.name}`, () => {
    let db: DocDb;
    let close: () => Promise<void>;
    let now: number;
    let log: EventLog;
    beforeEach(async () => {
      ({ db, close } = await backend.open());
      now = Date.UTC(2026, 0, 10);
      log = new EventLog(db, () => now);
    });
    afterEach(() => close());

    it('answers the newest events first, as many as asked for', async () => {
      await log.record({ kind: 'failover', node: 'a' });
      now += 1000;
      await log.record({ kind: 'move', uid: 7, from: 'a', to: 'b' });
      now += 1000;
      await log.record({ kind: 'failback', node: 'a' });
      const recent = await log.recent(2);
      assert.deepEqual(
        recent.map(({ kind, at, node, uid }) => ({ kind, at, node, uid })),
        [
          { kind: 'failback', at: now, node: 'a', uid: undefined },
          { kind: 'move', at: now - 1000, node: undefined, uid: 7 },
        ],
      );
      assert.equal((await log.recent(10)).length, 3);
    });

    it('prunes the events older than a week and keeps the rest', async () => {
      await log.record({ kind: 'failover', node: 'old' });
      now += 3 * DAY;
      await log.record({ kind: 'failover', node: 'newer' });
      now += 5 * DAY;
      assert.equal(await log.prune(), 1);
      assert.deepEqual((await log.recent(10)).map((e) => e.node), ['newer']);
      assert.equal(await log.prune(), 0);
    });
  });
}
