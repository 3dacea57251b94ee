// Per-user data metrics through a running gateway, on the embedded store and on Couch: known
// writes give known records and bytes per collection and known request and byte counts (admin
// API and `syncgate user show`); `syncgate user top` orders users by bytes, records and
// requests, and `--node` keeps one node's users; a user with no requests costs no write.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { adminApi, type AdminCall } from '../support/admin.js';
import { basicAuth, startCouchNode, type CouchNode } from '../support/couch.js';
import { SyncClient, type SyncResponse } from '../support/client.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { credentialsOf, requestToken } from '../support/tokens.js';
import type { UserUsageRow as Row } from '../../federation/usage.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));
const ADMIN = randomBytes(24).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** A client that adds up what its requests sent and received, as the gateway should count them. */
class CountingClient {
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  constructor(readonly client: SyncClient) {}
  get uid(): number {
    return this.client.uid;
  }
  private count(body: unknown, res: SyncResponse): SyncResponse {
    this.requests++;
    if (body !== undefined) this.bytesIn += Buffer.byteLength(JSON.stringify(body));
    this.bytesOut += Buffer.byteLength(res.text);
    return res;
  }
  async post(path: string, body: unknown): Promise<SyncResponse> {
    const res = await this.client.post(path, body);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json().failed, {});
    return this.count(body, res);
  }
  async get(path: string): Promise<SyncResponse> {
    const res = await this.client.get(path);
    assert.equal(res.status, 200, res.text);
    return this.count(undefined, res);
  }
}

const records = (prefix: string, sizes: number[]) => sizes.map((n, i) => ({ id: `${prefix}${i}`, payload: 'x'.repeat(n) }));

for (const store of ['embedded', 'couch'] as const) {
  describe(`per-user data metrics (${store} store)`, function () {
    this.timeout(180_000);
    let dir: string;
    let gw: TestGateway;
    let own: CouchNode | undefined;
    let other: CouchNode;
    let admin: AdminCall;
    let accounts: LocalAccounts;
    let known: CountingClient;
    let knownEmail: string;
    const third: CountingClient[] = [];

    const cli = async (...args: string[]) =>
      (await run(process.execPath, [BIN, ...args, '--server', gw.url], { env: { ...process.env, SYNCGATE_ADMIN_TOKEN: ADMIN, COUCH_URL: '' } })).stdout;
    const signIn = async (email: string) => {
      const acct = await accounts.create(email);
      const res = await requestToken(gw.url, { bearer: await accounts.bearer(acct, 600), keyId: keyIdOf(acct) });
      assert.equal(res.status, 200, res.text);
      return new CountingClient(new SyncClient(credentialsOf(res)));
    };
    const top = async (by: string, query = ''): Promise<Row[]> => admin('GET', `/users/top?by=${by}${query}`);
    /** Waits for the flush that writes what the clients did (the last request of each counted). */
    const flushed = async (clients: CountingClient[]) => {
      for (;;) {
        const rows = await top('bytes', '&limit=1000');
        if (clients.every((c) => rows.find((r) => r.uid === c.uid)?.requestsDay === c.requests)) return rows;
        await sleep(200);
      }
    };
    const written = async () => {
      const res = await fetch(`${gw.url}/__metrics__`, { headers: { Authorization: `Bearer ${ADMIN}` } });
      assert.equal(res.status, 200);
      const line = (await res.text()).split('\n').find((l) => l.startsWith('syncgate_usage_users_written_total '));
      assert.ok(line, 'syncgate_usage_users_written_total is scraped');
      return Number(line.split(' ')[1]);
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'syncgate-usage-'));
      // The Couch of the gateway is one of this test's own: the usage of other tests' users,
      // on the run's shared Couch, must not enter its top lists.
      [other, own] = await Promise.all([startCouchNode(), store === 'couch' ? startCouchNode() : Promise.resolve(undefined)]);
      gw = await startGateway({ COUCH_URL: own?.url ?? '', SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_USAGE_FLUSH_SEC: '1', SYNCGATE_FXA: 'false' }, dir);
      admin = adminApi(() => gw.url, ADMIN);
      accounts = new LocalAccounts(dir);
      await admin('POST', '/operators', { name: 'acme' });
      await admin('POST', '/nodes', { name: 'n2', operator: 'acme', url: other.url, capacity: 100 });
    });
    after(async () => {
      await gw?.close();
      await Promise.all([own?.stop(), other?.stop()]);
      await rm(dir, { recursive: true, force: true });
    });

    it('known writes give their records and bytes per collection, and the requests and bytes of the known requests (admin API, user show)', async () => {
      knownEmail = `known-${randomBytes(3).toString('hex')}@example.com`;
      known = await signIn(knownEmail);
      await known.post('/storage/bookmarks', records('b', [100, 200, 300]));
      await known.post('/storage/history', records('h', [50, 70]));
      await known.get('/info/collections');
      const sizes = { bookmarks: { records: 3, bytes: 600 }, history: { records: 2, bytes: 120 } };

      // Straight away: sizes from the store, traffic including this gateway's unflushed count.
      const shown = await admin('GET', `/users/${known.uid}`);
      assert.equal(shown.uid, known.uid);
      assert.equal(shown.node, 'default');
      // The registry gave it a replica at the other operator (kept only between Couch nodes).
      const placed = await admin('GET', `/uids/${known.uid}`);
      assert.equal(shown.replica, placed.replica);
      assert.equal(shown.move, null);
      assert.deepEqual(shown.collections, sizes);
      assert.equal(shown.records, 5);
      assert.equal(shown.bytes, 720);
      assert.equal(shown.sizes, 'live');
      const traffic = { requests: 3, bytesIn: known.bytesIn, bytesOut: known.bytesOut };
      assert.deepEqual(shown.traffic, { hour: traffic, day: traffic });

      // Once flushed, the usage document says the same; the token request is not a storage request.
      const row = (await flushed([known])).find((r) => r.uid === known.uid) as Row;
      assert.deepEqual(
        { node: row.node, records: row.records, bytes: row.bytes, requestsHour: row.requestsHour, requestsDay: row.requestsDay, bytesInDay: row.bytesInDay, bytesOutDay: row.bytesOutDay, bytesInHour: row.bytesInHour, bytesOutHour: row.bytesOutHour },
        { node: 'default', records: 5, bytes: 720, requestsHour: 3, requestsDay: 3, bytesInDay: known.bytesIn, bytesOutDay: known.bytesOut, bytesInHour: known.bytesIn, bytesOutHour: known.bytesOut },
      );

      // The account's email names the same user; the command prints the same numbers.
      assert.deepEqual((await admin('GET', `/users/${encodeURIComponent(knownEmail)}`)).collections, sizes);
      const out = await cli('user', 'show', knownEmail);
      assert.match(out, new RegExp(`^uid ${known.uid} \\(.*\\): node default, ${placed.replica ? `replica ${placed.replica}` : 'no replica'}$`, 'm'));
      assert.match(out, /^bookmarks\s+3\s+600$/m);
      assert.match(out, /^history\s+2\s+120$/m);
      assert.match(out, /^total\s+5\s+720$/m);
      assert.match(out, new RegExp(`^last hour\\s+3\\s+${known.bytesIn}\\s+${known.bytesOut}$`, 'm'));
      assert.match(out, new RegExp(`^last day\\s+3\\s+${known.bytesIn}\\s+${known.bytesOut}$`, 'm'));

      // A deletion counts as a write: the next flush has the collection gone.
      const del = await known.client.delete('/storage/history');
      assert.equal(del.status, 200);
      known.requests++;
      known.bytesOut += Buffer.byteLength(del.text);
      const after = (await flushed([known])).find((r) => r.uid === known.uid) as Row;
      assert.equal(after.records, 3);
      assert.equal(after.bytes, 600);
      assert.deepEqual((await admin('GET', `/users/${known.uid}`)).collections, { bookmarks: sizes.bookmarks });
    });

    it('user top orders users by bytes, records and requests; --node keeps one node\'s users', async () => {
      // The next users go to n2: the default node takes no new users.
      await admin('POST', '/nodes/default/drain');
      const [big, many, chatty] = await Promise.all(['big', 'many', 'chatty'].map((n) => signIn(`${n}-${randomBytes(3).toString('hex')}@example.com`)));
      third.push(big!, many!, chatty!);
      await big!.post('/storage/tabs', records('t', [5000])); // 1 record, 5000 bytes
      await big!.get('/info/collections'); // 2 requests
      await many!.post('/storage/history', records('h', Array(10).fill(10))); // 10 records, 100 bytes, 1 request
      await chatty!.post('/storage/prefs', records('p', [10])); // 1 record, 10 bytes
      for (let i = 0; i < 8; i++) await chatty!.get('/info/collections'); // 9 requests
      for (const c of third) assert.equal((await admin('GET', `/uids/${c.uid}`)).node, 'n2');
      await flushed([known, ...third]);

      const uids = (rows: Row[]) => rows.map((r) => r.uid);
      const firstColumn = (table: string) => table.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
      assert.deepEqual(uids(await top('bytes')), [big!.uid, known.uid, many!.uid, chatty!.uid]);
      assert.deepEqual(firstColumn(await cli('user', 'top', '--by', 'bytes')), [big!.uid, known.uid, many!.uid, chatty!.uid]);
      assert.deepEqual(firstColumn(await cli('user', 'top', '--by', 'bytes', '--node', 'n2')), [big!.uid, many!.uid, chatty!.uid]);
      assert.deepEqual(firstColumn(await cli('user', 'top', '--by', 'records', '--node', 'n2')), [many!.uid, big!.uid, chatty!.uid]);
      assert.deepEqual(firstColumn(await cli('user', 'top', '--by', 'requests', '--node', 'n2')), [chatty!.uid, big!.uid, many!.uid]);
      assert.deepEqual(firstColumn(await cli('user', 'top', '--by', 'requests', '--node', 'default')), [known.uid]);
      assert.deepEqual(firstColumn(await cli('user', 'top', '--by', 'records', '--limit', '2')), [many!.uid, known.uid]);
      const json = JSON.parse(await cli('user', 'top', '--by', 'requests', '--node', 'n2', '--json')) as Row[];
      assert.deepEqual(json.map((r) => [r.uid, r.node, r.records, r.bytes, r.requestsDay]), [
        [chatty!.uid, 'n2', 1, 10, 9],
        [big!.uid, 'n2', 1, 5000, 2],
        [many!.uid, 'n2', 10, 100, 1],
      ]);
      const table = await cli('user', 'top', '--by', 'bytes', '--node', 'n2');
      assert.match(table, /^uid\s+node\s+records\s+bytes\s+requests\/hour\s+requests\/day\s+bytes in\/day\s+bytes out\/day$/m);
      assert.match(table, new RegExp(`^\\s*${big!.uid}\\s+n2\\s+1\\s+5000\\s+2\\s+2\\s+${big!.bytesIn}\\s+${big!.bytesOut}$`, 'm'));
      await assert.rejects(cli('user', 'top', '--by', 'size'), /must be bytes, records or requests/);
      await assert.rejects(top('size'), /400/);
      // Nothing without the admin credential.
      for (const path of ['/users/top?by=bytes', `/users/${big!.uid}`]) {
        const res = await fetch(`${gw.url}/__admin__${path}`, { headers: { Authorization: 'Bearer wrong-credential-of-16' } });
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), { error: 'admin credential required' });
      }
    });

    it('a user with no requests costs no write: over several flush intervals nothing is written, and one request writes only its user', async () => {
      await flushed([known, ...third]);
      const users = [known, ...third];
      // Read afresh each time (top answers from a few seconds' cache).
      const updated = async () => Promise.all(users.map(async (c) => (await admin('GET', `/users/${c.uid}`)).updatedAt as number));
      const before = await updated();
      const count = await written();
      const revs = own ? await Promise.all(users.map((c) => usageRev(own!, c.uid))) : [];
      await sleep(3500); // three flush intervals and more, with no request
      assert.equal(await written(), count, 'no usage document written while nobody made a request');
      assert.deepEqual(await updated(), before);
      if (own) assert.deepEqual(await Promise.all(users.map((c) => usageRev(own!, c.uid))), revs);

      // The flushes are running: one request of one user is written, that user's alone.
      await known.get('/info/collections');
      await flushed([known]);
      assert.equal(await written(), count + 1);
      const now = await updated();
      assert.ok((now[0] as number) > (before[0] as number));
      assert.deepEqual(now.slice(1), before.slice(1));
    });

    if (store === 'couch') {
      it('two gateways on one Couch: their counts of the same user add up in one usage document', async () => {
        const gw2 = await startGateway({ COUCH_URL: own!.url, SYNC_MASTER_SECRET: gw.secret, SYNCGATE_USAGE_FLUSH_SEC: '1', SYNCGATE_FXA: 'false' });
        try {
          const there = new CountingClient(new SyncClient(gw2.credentials(known.uid)));
          await there.post('/storage/bookmarks', records('c', [400]));
          await there.get('/info/collections');
          await known.get('/info/collections');
          const before = known.requests;
          known.requests += there.requests; // what top should say: both gateways' requests
          const row = (await flushed([known])).find((r) => r.uid === known.uid) as Row;
          assert.equal(row.requestsDay, before + there.requests);
          // The count after gw2's write: 4 bookmarks, 1000 bytes (the history collection was deleted).
          assert.deepEqual([row.records, row.bytes], [4, 1000]);
        } finally {
          await gw2.close();
        }
      });
    }
  });
}

/** The revision of a user's usage document, read from Couch itself. */
async function usageRev(couch: CouchNode, uid: number): Promise<string> {
  const u = new URL(couch.url);
  const res = await fetch(`${u.origin}/syncgate_usage/usage:${uid}`, { headers: { Authorization: basicAuth(u) } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { _rev: string })._rev;
}
