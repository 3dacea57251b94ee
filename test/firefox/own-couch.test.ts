// A real Firefox keeps syncing while its account's storage moves to the person's own Couch and
// back, both asked for on the account page (`/?couch`) as a person does: Firefox does not
// notice (same uid and endpoint, every sync a success, its data still there).
// Needs Debian's firefox-esr and root for the network namespace; skipped, saying why, without.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Firefox, firefoxBinary, Netns } from '../support/firefox.js';
import { eventually, firstSync, makeThings, pageMessage, signInOnPage, syncNow, type Made } from '../support/firefox-sync.js';

const binary = firefoxBinary();
const ADMIN = randomBytes(16).toString('hex');
const admin = { Authorization: `Bearer ${ADMIN}` };

/** info/collections of Firefox's current storage, fetched by Firefox with its own token. */
function serverCollections(ff: Firefox): Promise<Record<string, number>> {
  return ff.chrome(`
    const { Weave } = ChromeUtils.importESModule('resource://services-sync/main.sys.mjs');
    const res = await Weave.Service.resource(Weave.Service.infoURL).get();
    return res.obj;`);
}

describe("Firefox syncs on while its storage moves to the person's own Couch and back (the account page)", function () {
  this.timeout(300_000);
  if ('missing' in binary) {
    // Skipped only where Firefox (or root for the namespace) is missing; the title says how to get it.
    it.skip(`needs a real Firefox: ${binary.missing}`);
    return;
  }
  let ns: Netns;
  let ff: Firefox | undefined;
  before(async () => {
    // The gateway's own store and the person's Couch are two pouchdb-servers in the namespace.
    ns = await Netns.start({ SYNCGATE_ADMIN_TOKEN: ADMIN, SYNCGATE_TEST_NETNS_COUCH: '1', SYNCGATE_TEST_NETNS_OWN_COUCH: '1' }, 1);
  });
  after(async () => {
    await ff?.stop().catch(() => undefined);
    await ns.stop();
  });

  it('moves there from the page, Firefox syncs from it, moves back from the page, Firefox syncs on', async () => {
    ff = await Firefox.start(binary.path, ns, 0);
    const email = `${randomBytes(4).toString('hex')}@example.org`;
    const password = 'a long password';
    await signInOnPage(ff, email, password, 'signup');
    const first = await firstSync(ff);
    assert.equal(first.status.sync, 'success.sync', JSON.stringify(first.status));
    const made: Made = {
      bookmark: { url: 'https://example.com/own', title: 'On my own Couch' },
      visit: { url: 'https://example.com/seen', title: 'Seen' },
      login: { origin: 'https://example.com', username: 'me', password: 'site secret' },
    };
    await makeThings(ff, made);
    assert.equal((await syncNow(ff)).status.sync, 'success.sync');
    const placement = async () => (await ns.request('GET', `/__admin__/users/${encodeURIComponent(email)}/move`, { headers: admin })).body as { uid: number; node: string; move: unknown };

    const page = async (button: '#couch-submit' | '#couch-back') => {
      const m = (ff as Firefox).marionette;
      await m.setContext('content');
      await m.navigate(`${ns.url}/?couch`);
      await m.type('#couch-email', email);
      await m.type('#couch-password', password);
      if (button === '#couch-submit') await m.type('#couch-url', ns.ownCouch as string);
      await m.click(button);
      return pageMessage(ff as Firefox);
    };

    const there = await page('#couch-submit');
    assert.equal(there.kind, 'done', there.text);
    const { uid } = await placement();
    const moved = await eventually(placement, (p) => p.move === null && p.node === `own-${uid}`, 60_000);
    assert.equal(moved.node, `own-${uid}`);
    const onOwn = await syncNow(ff);
    assert.equal(onOwn.status.sync, 'success.sync', JSON.stringify(onOwn.status));
    assert.equal(onOwn.endpoint, first.endpoint, 'the same uid and endpoint: nothing for Firefox to notice');
    assert.ok('bookmarks' in (await serverCollections(ff)), 'Firefox reads its storage from the Couch it moved to');

    const back = await page('#couch-back');
    assert.equal(back.kind, 'done', back.text);
    const returned = await eventually(placement, (p) => p.move === null && p.node === 'default', 60_000);
    assert.equal(returned.node, 'default');
    const after = await syncNow(ff);
    assert.equal(after.status.sync, 'success.sync', JSON.stringify(after.status));
    assert.equal(after.endpoint, first.endpoint);
    const collections = await serverCollections(ff);
    for (const c of ['meta', 'crypto', 'bookmarks', 'history', 'passwords']) assert.ok(c in collections, `${c} still on the server: ${JSON.stringify(collections)}`);
  });
});
