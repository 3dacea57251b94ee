// One database per user, named from the uid alone and created on first use, in the store this
// run is for: a folder under the data folder (embedded), or a Couch database whose _security
// admits only the gateway's own Couch user.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { storeUnderTest, testCouchUrl } from '../support/couch.js';
import { startGateway, type TestGateway } from '../support/gateway.js';

describe(`user databases (${storeUnderTest} store)`, () => {
  let gw: TestGateway;
  before(async () => (gw = await startGateway()));
  after(() => gw.close());

  it('the first request of a new uid creates its database sync_<uid>, and nothing exists before', async () => {
    const u = gw.newUser();
    const name = `sync_${u.uid}`;
    if (storeUnderTest === 'embedded') {
      // A key range of a LevelDB shard, not a folder of its own.
      assert.equal(await gw.server.store.exists(String(u.uid)), false);
      assert.equal((await u.put('/storage/meta/global', { payload: 'x' })).status, 200);
      assert.equal(await gw.server.store.exists(String(u.uid)), true);
      assert.equal(existsSync(join(gw.config.dataDir, 'users', name)), false, 'no folder per user');
      return;
    }
    const couch = new URL(await testCouchUrl());
    const auth = { Authorization: `Basic ${Buffer.from(`${decodeURIComponent(couch.username)}:${decodeURIComponent(couch.password)}`).toString('base64')}` };
    const base = `${couch.protocol}//${couch.host}`;
    assert.equal((await fetch(`${base}/${name}`, { headers: auth })).status, 404);
    assert.equal(await gw.server.store.exists(String(u.uid)), false);
    assert.equal((await u.put('/storage/meta/global', { payload: 'x' })).status, 200);
    assert.equal(await gw.server.store.exists(String(u.uid)), true);
    const info = await fetch(`${base}/${name}`, { headers: auth });
    assert.equal(info.status, 200);
    const security = (await (await fetch(`${base}/${name}/_security`, { headers: auth })).json()) as { members: { names: string[] } };
    assert.deepEqual(security.members.names, [decodeURIComponent(couch.username)]);
    const anonymous = await fetch(`${base}/${name}/_all_docs`);
    assert.ok(anonymous.status === 401 || anonymous.status === 403, `anonymous read got ${anonymous.status}`);
    const state = (await (await fetch(`${base}/${name}/state`, { headers: auth })).json()) as { collections: Record<string, number> };
    assert.ok(state.collections.meta! > 0, 'the state document lives in the user database');
  });
});
