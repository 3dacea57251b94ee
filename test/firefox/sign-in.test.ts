// A real Firefox signs up on syncgate's page and syncs, with nothing but the autoconfig pref:
// Firefox builds the sign-in URL itself (its OAuth state, PKCE challenge and keys_jwk), the
// test types into the page as a person does, and the first sync must succeed. Needs Debian's
// firefox-esr and root for the network namespace; skipped, saying why, without them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Firefox, firefoxBinary, Netns } from '../support/firefox.js';

const binary = firefoxBinary();

/** Chrome-context helpers run inside Firefox. */
const SYNC = `const { Weave } = ChromeUtils.importESModule('resource://services-sync/main.sys.mjs');`;
const FXA = `const { getFxAccountsSingleton } = ChromeUtils.importESModule('resource://gre/modules/FxAccounts.sys.mjs'); const fxAccounts = getFxAccountsSingleton();`;

/** Firefox's own sign-in URL, as its "Sign in to sync" button opens it. */
async function signInUrl(ff: Firefox): Promise<string> {
  return ff.chrome<string>(`
    const { FxAccountsConfig } = ChromeUtils.importESModule('resource://gre/modules/FxAccountsConfig.sys.mjs');
    return FxAccountsConfig.promiseConnectAccountURI('syncgate-test');
  `);
}

async function signUpOnPage(ff: Firefox, email: string, password: string, mode: 'signup' | 'signin'): Promise<string> {
  const url = await signInUrl(ff);
  await ff.marionette.setContext('content');
  await ff.marionette.navigate(url);
  if (mode === 'signup') await ff.marionette.click('input[name="mode"][value="signup"]');
  await ff.marionette.type('#email', email);
  await ff.marionette.type('#password', password);
  await ff.marionette.click('#submit');
  return url;
}

/**
 * Waits until Firefox is signed in with keys and has finished a sync of its own (it starts one
 * as soon as it is configured), then reports Weave's status and when bookmarks last synced.
 */
async function syncedStatus(ff: Firefox): Promise<{ user: { email: string; verified: boolean } | null; status: Record<string, string>; bookmarksSynced: number }> {
  return ff.chrome(
    `${SYNC} ${FXA}
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    for (let i = 0; i < 600; i++) {
      const user = await fxAccounts.getSignedInUser();
      const keys = user && user.verified && (await fxAccounts.keys.hasKeysForScope('https://identity.mozilla.com/apps/oldsync').catch(() => false));
      if (keys) break;
      await sleep(100);
    }
    const bookmarks = () => Weave.Service.engineManager.get('bookmarks')?.getLastSync?.() ?? Promise.resolve(0);
    for (let i = 0; i < 900; i++) {
      if (!Weave.Service.locked && Weave.Status.sync === 'success.sync' && (await bookmarks()) > 0) break;
      // Its own first sync did not come: ask for one, as the Sync button does.
      if (i === 200 && !Weave.Service.locked) Weave.Service.sync();
      await sleep(100);
    }
    const user = await fxAccounts.getSignedInUser();
    return { user: user && { email: user.email, verified: user.verified }, status: { service: Weave.Status.service, sync: Weave.Status.sync, login: Weave.Status.login }, bookmarksSynced: await bookmarks() };`,
    [],
    150_000,
  );
}

describe('Firefox signs in to syncgate and syncs', function () {
  this.timeout(240_000);
  if ('missing' in binary) {
    // Skipped only where Firefox (or root for the namespace) is missing; the title says how to get it.
    it.skip(`needs a real Firefox: ${binary.missing}`);
    return;
  }
  let ns: Netns;
  let firefox: Firefox[] = [];
  before(async () => {
    ns = await Netns.start({});
  });
  after(async () => {
    for (const ff of firefox) await ff.stop().catch(() => undefined);
    await ns.stop();
  });

  it('signs up on the page Firefox opened, and the first sync succeeds', async () => {
    const ff = await Firefox.start(binary.path, ns, 0);
    firefox.push(ff);
    const email = `${randomBytes(4).toString('hex')}@example.org`;
    const url = await signUpOnPage(ff, email, 'a long password', 'signup');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?.*context=oauth_webchannel_v1.*keys_jwk=/);
    const { user, status, bookmarksSynced } = await syncedStatus(ff);
    assert.deepEqual(user, { email, verified: true });
    assert.equal(status.sync, 'success.sync', JSON.stringify(status));
    assert.equal(status.service, 'success.status_ok', JSON.stringify(status));
    assert.ok(bookmarksSynced > 0, 'the bookmarks engine has synced');
  });
});
