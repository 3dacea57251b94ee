// What the Firefox tests do inside a real Firefox: its own sign-in URL, the page filled in as a
// person fills it in, syncs asked for as the Sync button asks, and the bookmarks, history and
// saved passwords a person makes and looks at. Chrome-context scripts, over Marionette.
import type { Firefox } from './firefox.js';

const SYNC = `const { Weave } = ChromeUtils.importESModule('resource://services-sync/main.sys.mjs');`;
const FXA = `const { getFxAccountsSingleton } = ChromeUtils.importESModule('resource://gre/modules/FxAccounts.sys.mjs'); const fxAccounts = getFxAccountsSingleton();`;
const PLACES = `const { PlacesUtils } = ChromeUtils.importESModule('resource://gre/modules/PlacesUtils.sys.mjs');`;
const SLEEP = `const sleep = (ms) => new Promise((r) => setTimeout(r, ms));`;

/** Firefox's own sign-in URL, as its "Sign in to sync" button opens it. */
export function signInUrl(ff: Firefox): Promise<string> {
  return ff.chrome<string>(`
    const { FxAccountsConfig } = ChromeUtils.importESModule('resource://gre/modules/FxAccountsConfig.sys.mjs');
    return FxAccountsConfig.promiseConnectAccountURI('syncgate-test');
  `);
}

/** Opens `url` in the tab and types into the page's form, as a person does; returns the text the page then shows. */
export async function fillSignInPage(ff: Firefox, url: string, email: string, password: string, mode: 'signup' | 'signin'): Promise<void> {
  await ff.marionette.setContext('content');
  await ff.marionette.navigate(url);
  if (mode === 'signup') await ff.marionette.click('input[name="mode"][value="signup"]');
  await ff.marionette.type('#email', email);
  await ff.marionette.type('#password', password);
  await ff.marionette.click('#submit');
}

/** Signs in (or up) on the page Firefox built; returns that URL. */
export async function signInOnPage(ff: Firefox, email: string, password: string, mode: 'signup' | 'signin'): Promise<string> {
  const url = await signInUrl(ff);
  await fillSignInPage(ff, url, email, password, mode);
  return url;
}

/** The page's status line, once it says something other than what it says while working. */
export async function pageMessage(ff: Firefox, timeoutMs = 30_000): Promise<{ text: string; kind: string }> {
  await ff.marionette.setContext('content');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await ff.marionette.execute<{ text: string; kind: string }>(`const m = document.getElementById('message'); return { text: m.textContent, kind: m.className };`);
    if ((m.kind === 'error' || m.kind === 'done') && m.text) return m;
    if (Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface SyncState {
  user: { email: string; verified: boolean } | null;
  status: { service: string; sync: string; login: string };
  /** The storage node URL of Firefox's current token: it names the uid. */
  endpoint: string | null;
}

/**
 * Waits until Firefox is signed in with keys and its own first sync has finished (it starts
 * one as soon as it is configured); asks for one, as the Sync button does, if none came.
 */
export function firstSync(ff: Firefox): Promise<SyncState> {
  return ff.chrome<SyncState>(
    `${SYNC} ${FXA} ${SLEEP}
    for (let i = 0; i < 600; i++) {
      // While the sign-in completes, the account state is replaced under a call that is in
      // flight, which then rejects (ERROR_INVALID_ACCOUNT_STATE): ask again.
      const user = await fxAccounts.getSignedInUser().catch(() => null);
      const keys = user && user.verified && (await fxAccounts.keys.hasKeysForScope('https://identity.mozilla.com/apps/oldsync').catch(() => false));
      if (keys) break;
      await sleep(100);
    }
    const bookmarks = () => Weave.Service.engineManager.get('bookmarks')?.getLastSync?.() ?? Promise.resolve(0);
    for (let i = 0; i < 900; i++) {
      if (!Weave.Service.locked && Weave.Status.sync === 'success.sync' && (await bookmarks()) > 0) break;
      if (i === 200 && !Weave.Service.locked) Weave.Service.sync();
      await sleep(100);
    }
    const user = await fxAccounts.getSignedInUser();
    return { user: user && { email: user.email, verified: user.verified }, status: { service: Weave.Status.service, sync: Weave.Status.sync, login: Weave.Status.login }, endpoint: Weave.Service.identity._token?.endpoint ?? null };`,
    [],
    150_000,
  );
}

/** One whole sync, started now (after any in progress), as the Sync button starts it. */
export function syncNow(ff: Firefox): Promise<SyncState> {
  return ff.chrome<SyncState>(
    `${SYNC} ${FXA} ${SLEEP}
    for (let i = 0; i < 600 && Weave.Service.locked; i++) await sleep(100);
    await Weave.Service.sync();
    for (let i = 0; i < 600 && Weave.Service.locked; i++) await sleep(100);
    const user = await fxAccounts.getSignedInUser();
    return { user: user && { email: user.email, verified: user.verified }, status: { service: Weave.Status.service, sync: Weave.Status.sync, login: Weave.Status.login }, endpoint: Weave.Service.identity._token?.endpoint ?? null };`,
    [],
    120_000,
  );
}

/** What a person makes in one profile: a bookmark on the toolbar, a visited page, a saved password. */
export interface Made {
  bookmark: { url: string; title: string };
  visit: { url: string; title: string };
  login: { origin: string; username: string; password: string };
}

export function makeThings(ff: Firefox, made: Made): Promise<void> {
  return ff.chrome(
    `${PLACES}
    const [m] = args;
    await PlacesUtils.bookmarks.insert({ parentGuid: PlacesUtils.bookmarks.toolbarGuid, url: m.bookmark.url, title: m.bookmark.title });
    await PlacesUtils.history.insert({ url: m.visit.url, title: m.visit.title, visits: [{ transition: PlacesUtils.history.TRANSITIONS.TYPED, date: new Date() }] });
    const login = Cc['@mozilla.org/login-manager/loginInfo;1'].createInstance(Ci.nsILoginInfo);
    login.init(m.login.origin, m.login.origin, null, m.login.username, m.login.password, 'username', 'password');
    await Services.logins.addLoginAsync(login);`,
    [made],
  );
}

/** What a profile holds of those things: the bookmark's title, whether the page was visited, the saved password. */
export function lookAt(ff: Firefox, made: Made): Promise<{ bookmarkTitle: string | null; visited: boolean; password: string | null }> {
  return ff.chrome(
    `${PLACES}
    const [m] = args;
    const bookmark = await PlacesUtils.bookmarks.fetch({ url: m.bookmark.url });
    const visit = await PlacesUtils.history.fetch(m.visit.url);
    const logins = await Services.logins.searchLoginsAsync({ origin: m.login.origin });
    const login = logins.find((l) => l.username === m.login.username);
    return { bookmarkTitle: bookmark ? bookmark.title : null, visited: !!visit, password: login ? login.password : null };`,
    [made],
  );
}

/** Renames the bookmark and changes the saved password, as a person edits them. */
export function editThings(ff: Firefox, made: Made, title: string, password: string): Promise<void> {
  return ff.chrome(
    `${PLACES}
    const [m, title, password] = args;
    const bookmark = await PlacesUtils.bookmarks.fetch({ url: m.bookmark.url });
    await PlacesUtils.bookmarks.update({ guid: bookmark.guid, title });
    const [login] = (await Services.logins.searchLoginsAsync({ origin: m.login.origin })).filter((l) => l.username === m.login.username);
    const changed = login.clone();
    changed.password = password;
    await Services.logins.modifyLoginAsync(login, changed);`,
    [made, title, password],
  );
}

/** Polls `look` until `done` holds, or the time is up; returns the last look. */
export async function eventually<T>(look: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let v: T;
    try {
      v = await look();
    } catch (e) {
      // FxAccounts refuses a call whose account changed while it ran (a sign-out under way,
      // which is what these waits are for): look again.
      if (!/ERROR_INVALID_ACCOUNT_STATE/.test(String(e)) || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}
