// A real Firefox signs in to syncgate's own accounts with nothing but the autoconfig pref:
// Firefox builds the sign-in URL itself (its OAuth state, PKCE challenge and keys_jwk), the
// test types into the page as a person does. Sign-up and a first sync; a wrong password on
// the page; an account the operator deletes; a password reset without the old password.
// Needs Debian's firefox-esr and root for the network namespace; skipped, saying why, without.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Firefox, firefoxBinary, Netns } from '../support/firefox.js';
import { eventually, fillSignInPage, firstSync, lookAt, makeThings, pageMessage, signInOnPage, signInUrl, syncNow, type Made } from '../support/firefox-sync.js';

const binary = firefoxBinary();
const ADMIN = randomBytes(16).toString('hex');
const admin = { Authorization: `Bearer ${ADMIN}` };
const address = () => `${randomBytes(4).toString('hex')}@example.org`;

/** Whether Firefox still holds a session, and what its toolbar button would show. */
function accountState(ff: Firefox): Promise<{ signedIn: boolean; hasSession: boolean; ui: string }> {
  return ff.chrome(`
    const { getFxAccountsSingleton } = ChromeUtils.importESModule('resource://gre/modules/FxAccounts.sys.mjs');
    const { UIState } = ChromeUtils.importESModule('resource://services-sync/UIState.sys.mjs');
    const fxAccounts = getFxAccountsSingleton();
    const user = await fxAccounts.getSignedInUser();
    await UIState.refresh();
    return { signedIn: !!user, hasSession: await fxAccounts.hasLocalSession(), ui: UIState.get().status };`);
}

/** info/collections of Firefox's current storage, fetched by Firefox with its own token. */
function serverCollections(ff: Firefox): Promise<Record<string, number>> {
  return ff.chrome(`
    const { Weave } = ChromeUtils.importESModule('resource://services-sync/main.sys.mjs');
    const res = await Weave.Service.resource(Weave.Service.infoURL).get();
    return res.obj;`);
}

describe('Firefox signs in to syncgate and syncs', function () {
  this.timeout(300_000);
  if ('missing' in binary) {
    // Skipped only where Firefox (or root for the namespace) is missing; the title says how to get it.
    it.skip(`needs a real Firefox: ${binary.missing}`);
    return;
  }
  let ns: Netns;
  let running: Firefox[] = [];
  const start = async (index: number) => {
    const ff = await Firefox.start(binary.path, ns, index);
    running.push(ff);
    return ff;
  };
  before(async () => {
    ns = await Netns.start({ SYNCGATE_ADMIN_TOKEN: ADMIN });
  });
  afterEach(async () => {
    for (const ff of running) await ff.stop().catch(() => undefined);
    running = [];
  });
  after(async () => {
    await ns.stop();
  });

  it('signs up on the page Firefox opened, and the first sync succeeds', async () => {
    const ff = await start(0);
    const email = address();
    const started = Date.now();
    const url = await signInOnPage(ff, email, 'a long password', 'signup');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?.*context=oauth_webchannel_v1.*keys_jwk=/);
    const { user, status } = await firstSync(ff);
    console.log(`      sign-up on the page + first sync: ${Date.now() - started} ms`);
    assert.deepEqual(user, { email, verified: true });
    assert.equal(status.sync, 'success.sync', JSON.stringify(status));
    assert.equal(status.service, 'success.status_ok', JSON.stringify(status));
    const collections = await serverCollections(ff);
    for (const c of ['meta', 'crypto', 'clients', 'bookmarks']) assert.ok(c in collections, `${c} uploaded: ${JSON.stringify(collections)}`);
  });

  it('refuses a wrong password on the page; the Firefox of a deleted account is signed out at its next sync', async () => {
    const [a, b] = [await start(0), await start(1)];
    const email = address();
    await signInOnPage(a, email, 'the right password', 'signup');
    assert.equal((await firstSync(a)).status.sync, 'success.sync');

    await signInOnPage(b, email, 'a wrong password', 'signin');
    assert.deepEqual(await pageMessage(b), { text: 'That is not the password of this account.', kind: 'error' });
    assert.equal((await accountState(b)).signedIn, false, 'a refused password signs nothing in');

    const deleted = await ns.request('DELETE', `/__admin__/accounts/${encodeURIComponent(email)}`, { headers: admin });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    // The toolbar's state follows the account's a moment later: wait for both.
    const after = await eventually(async () => (await syncNow(a), accountState(a)), (s) => !s.signedIn && s.ui === 'not_configured', 90_000);
    assert.deepEqual(after, { signedIn: false, hasSession: false, ui: 'not_configured' });
  });

  it('a reset without the old password: Firefox signs in again with the new one, gets a new key and uid, and uploads afresh', async () => {
    const ff = await start(0);
    const email = address();
    await signInOnPage(ff, email, 'the old password', 'signup');
    const before = await firstSync(ff);
    assert.equal(before.status.sync, 'success.sync');
    const made: Made = {
      bookmark: { url: 'https://example.com/kept', title: 'Kept in the profile' },
      visit: { url: 'https://example.com/visited', title: 'Visited' },
      login: { origin: 'https://example.com', username: 'me', password: 'site secret' },
    };
    await makeThings(ff, made);
    assert.equal((await syncNow(ff)).status.sync, 'success.sync');

    // The operator's link, opened as the person opens it, in a tab of the same Firefox.
    const link = await ns.request('POST', `/__admin__/accounts/${encodeURIComponent(email)}/reset`, { headers: admin });
    assert.equal(link.status, 200, JSON.stringify(link.body));
    await ff.marionette.setContext('content');
    await ff.marionette.navigate(link.body.link);
    await ff.marionette.type('#reset-password', 'the new password');
    await ff.marionette.click('#reset-submit');
    assert.equal((await pageMessage(ff)).kind, 'done');

    // Every session ended: Firefox keeps the account but must sign in again.
    const ended = await eventually(async () => (await syncNow(ff), accountState(ff)), (s) => !s.hasSession && s.ui === 'login_failed', 90_000);
    assert.deepEqual(ended, { signedIn: true, hasSession: false, ui: 'login_failed' });

    await fillSignInPage(ff, await signInUrl(ff), email, 'the new password', 'signin');
    const again = await eventually(() => syncNow(ff), (s) => s.status.sync === 'success.sync' && s.endpoint !== before.endpoint && s.endpoint !== null, 120_000);
    assert.equal(again.status.sync, 'success.sync', JSON.stringify(again.status));
    assert.notEqual(again.endpoint, before.endpoint, 'a new uid');
    const uidOf = (endpoint: string | null) => Number(/\/1\.5\/(\d+)\/?$/.exec(endpoint ?? '')?.[1]);
    assert.ok(uidOf(again.endpoint) > 0 && uidOf(again.endpoint) !== uidOf(before.endpoint));
    const collections = await serverCollections(ff);
    for (const c of ['meta', 'crypto', 'bookmarks', 'history', 'passwords']) assert.ok(c in collections, `${c} uploaded afresh: ${JSON.stringify(collections)}`);
    assert.deepEqual(await lookAt(ff, made), { bookmarkTitle: 'Kept in the profile', visited: true, password: 'site secret' });
  });
});
