// Two gateways sharing one registry on one Couch (and one data folder for the local issuer's
// key, as gateways of one deployment share their configuration): racing token requests for
// the same account get the same uid from either gateway, credentials from one work on the
// other, a key change on one is enforced by the other at once, and a node change written by
// one is followed by the other through the registry's _changes feed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeDoc, UidDoc } from '../../federation/registry.js';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { SyncClient } from '../support/client.js';
import { testCouchUrl } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { credentialsOf, keyId, requestToken } from '../support/tokens.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('two gateways sharing one registry on Couch', function () {
  this.timeout(60_000);
  let dir: string;
  let a: TestGateway;
  let b: TestGateway;
  let accounts: LocalAccounts;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'syncgate-registry-'));
    const env = { COUCH_URL: await testCouchUrl(), SYNC_MASTER_SECRET: randomBytes(24).toString('hex'), SYNCGATE_FXA: 'false' };
    a = await startGateway(env, dir);
    b = await startGateway(env, dir);
    accounts = new LocalAccounts(dir);
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('racing first token requests on both gateways hand out one uid per account, and no stray uid claims', async () => {
    const created = await Promise.all([...Array(6)].map((_, i) => accounts.create(`race${i}-${randomBytes(4).toString('hex')}@example.com`)));
    await Promise.all(
      created.map(async (acct) => {
        const bearer = await accounts.bearer(acct, 600);
        const answers = await Promise.all([a, b, a, b].map((gw) => requestToken(gw.url, { bearer, keyId: keyIdOf(acct) })));
        for (const r of answers) assert.equal(r.status, 200, r.text);
        const uids = new Set(answers.map((r) => r.json().uid));
        assert.equal(uids.size, 1, `${acct.email} got uids ${[...uids].join(', ')}`);
        const email = `${acct.sub}@accounts.syncgate.local`;
        const doc = await a.server.registry.user(email);
        assert.equal(doc?.rows.length, 1);
        const claims = (await a.server.registry.db.range<UidDoc>('uid:', 'uid:\ufff0')).filter((d) => d.email === email);
        assert.deepEqual(claims.map((c) => Number(c._id.slice(4))), [...uids]);
      }),
    );
  });

  it('credentials from one gateway work on the other; a key change on one is enforced by the other', async () => {
    const acct = await accounts.create(`both-${randomBytes(4).toString('hex')}@example.com`);
    const bearer = await accounts.bearer(acct, 600);
    const creds = credentialsOf(await requestToken(a.url, { bearer, keyId: keyIdOf(acct) }));
    assert.equal((await new SyncClient(creds).put('/storage/bookmarks/x', { payload: 'p' })).status, 200);
    const onB = new SyncClient({ ...creds, api_endpoint: creds.api_endpoint.replace(a.url, b.url) });
    assert.equal((await onB.get('/storage/bookmarks/x')).json().payload, 'p');

    const newKey = keyId(acct.keysChangedAt + 10, randomBytes(16).toString('hex'));
    const changed = await requestToken(a.url, { bearer, keyId: newKey });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.json().uid, creds.uid);
    const stale = await requestToken(b.url, { bearer, keyId: keyIdOf(acct) });
    assert.equal(stale.status, 401);
    assert.equal((await requestToken(b.url, { bearer, keyId: newKey })).json().uid, changed.json().uid);
  });

  it('a node taken down through one gateway\'s registry is seen by the other through the _changes feed', async () => {
    const db = a.server.registry.db;
    const setDowned = async (downed: boolean) => {
      for (;;) {
        const node = (await db.get<NodeDoc>('node:default')) as NodeDoc;
        if ((await db.put({ ...node, downed } as NodeDoc)) !== 'conflict') return;
      }
    };
    await setDowned(true);
    try {
      const deadline = Date.now() + 10_000;
      let res;
      do {
        const acct = await accounts.create(`late-${randomBytes(4).toString('hex')}@example.com`);
        res = await requestToken(b.url, { bearer: await accounts.bearer(acct, 600), keyId: keyIdOf(acct) });
        if (res.status === 503) break;
        await sleep(200);
      } while (Date.now() < deadline);
      assert.equal(res.status, 503, 'gateway B still places new users on a downed node');
      assert.ok(Number(res.header('retry-after')) > 0);
    } finally {
      await setDowned(false);
    }
    // And back up: B follows that too.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const acct = await accounts.create(`up-${randomBytes(4).toString('hex')}@example.com`);
      const res = await requestToken(b.url, { bearer: await accounts.bearer(acct, 600), keyId: keyIdOf(acct) });
      if (res.status === 200) break;
      assert.ok(Date.now() < deadline, 'gateway B did not see the node come back');
      await sleep(200);
    }
  });
});
