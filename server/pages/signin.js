// The sign-in page: everything secret happens here, in the browser, with WebCrypto.
// The password never leaves the page; the server gets authPW (a one-way derivation of it) and,
// for Firefox, only keys_jwe: the Sync key encrypted to the public key Firefox put in the URL.
// Mozilla accounts' onepw scheme (shared/spec/firefox-accounts.md section 4), so that
// the same password gives the same key on every device.
import { CompactEncrypt } from '/static/jose/index.js';

const NS = 'identity.mozilla.com/picl/v1/';
const OLDSYNC = 'https://identity.mozilla.com/apps/oldsync';
const utf8 = new TextEncoder();
const subtle = crypto.subtle;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const oauth = params.get('context') === 'oauth_webchannel_v1' && params.has('keys_jwk') ? params : undefined;

// --- bytes ---------------------------------------------------------------------------------
const hex = (bytes) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (s) => new Uint8Array(s.match(/../g).map((h) => parseInt(h, 16)));
const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const b64url = (bytes) => b64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const unb64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const xor = (a, b) => a.map((x, i) => x ^ b[i]);

async function hkdf(ikm, info, length) {
  const key = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: utf8.encode(NS + info) }, key, length * 8));
}

async function hmac(key, data) {
  const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, data));
}

const sha256 = async (data) => new Uint8Array(await subtle.digest('SHA-256', data));

/** authPW and unwrapBKey, from the password with the (lower-cased) email as salt. */
async function credentials(email, password) {
  const key = await subtle.importKey('raw', utf8.encode(password), 'PBKDF2', false, ['deriveBits']);
  const quick = new Uint8Array(await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: utf8.encode(`${NS}quickStretch:${email}`), iterations: 1000 }, key, 256));
  return { authPW: await hkdf(quick, 'authPW', 32), unwrapBKey: await hkdf(quick, 'unwrapBkey', 32) };
}

// --- the accounts server, with Hawk on its tokens -------------------------------------------
class ServerError extends Error {
  constructor(status, body) {
    super(body.message ?? `HTTP ${status}`);
    this.errno = body.errno;
    this.body = body;
  }
}

async function tokenKeys(tokenHex, type) {
  const k = await hkdf(unhex(tokenHex), type, 96);
  return { id: hex(k.slice(0, 32)), authKey: k.slice(32, 64), extra: k.slice(64, 96) };
}

async function call(method, path, body, token) {
  const headers = {};
  const text = body === undefined ? undefined : JSON.stringify(body);
  if (text !== undefined) headers['Content-Type'] = 'application/json';
  if (token) {
    const { id, authKey } = await tokenKeys(token.value, token.type);
    const ts = Math.floor(Date.now() / 1000);
    const nonce = b64(crypto.getRandomValues(new Uint8Array(8)));
    const hash = text === undefined ? '' : b64(await sha256(utf8.encode(`hawk.1.payload\napplication/json\n${text}\n`)));
    const port = location.port || (location.protocol === 'https:' ? '443' : '80');
    const normalized = `hawk.1.header\n${ts}\n${nonce}\n${method}\n${path}\n${location.hostname.toLowerCase()}\n${port}\n${hash}\n\n`;
    const mac = b64(await hmac(authKey, utf8.encode(normalized)));
    headers.Authorization = `Hawk id="${id}", ts="${ts}", nonce="${nonce}"${hash ? `, hash="${hash}"` : ''}, mac="${mac}"`;
  }
  const res = await fetch(path, { method, headers, body: text });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new ServerError(res.status, answer);
  return answer;
}

/** kB, from the key bundle the key-fetch token opens and the password's unwrapBKey. */
async function fetchKB(keyFetchToken, unwrapBKey) {
  const { bundle } = await call('GET', '/v1/account/keys', undefined, { value: keyFetchToken, type: 'keyFetchToken' });
  const { extra } = await tokenKeys(keyFetchToken, 'keyFetchToken');
  const k = await hkdf(extra, 'account/keys', 96);
  const bytes = unhex(bundle);
  const ciphertext = bytes.slice(0, 64);
  const mac = await hmac(k.slice(0, 32), ciphertext);
  if (hex(mac) !== hex(bytes.slice(64))) throw new Error('The key bundle did not verify.');
  const wrapKb = xor(ciphertext, k.slice(32, 96)).slice(32, 64);
  return xor(wrapKb, unwrapBKey);
}

// --- Firefox, over the WebChannel -----------------------------------------------------------
const waiting = new Map();
window.addEventListener('WebChannelMessageToContent', (event) => {
  const detail = typeof event.detail === 'string' ? JSON.parse(event.detail) : event.detail;
  if (detail?.id !== 'account_updates') return;
  const resolve = waiting.get(detail.message?.messageId);
  if (resolve) {
    waiting.delete(detail.message.messageId);
    resolve(detail.message.data);
  }
});

/** Sends a command to Firefox; with `wait`, resolves to its reply (undefined after `wait` ms). */
function toFirefox(command, data, wait) {
  const messageId = crypto.randomUUID();
  const reply = wait ? new Promise((resolve) => {
    waiting.set(messageId, resolve);
    setTimeout(() => {
      waiting.delete(messageId);
      resolve(undefined);
    }, wait);
  }) : Promise.resolve(undefined);
  // Firefox for desktop takes the detail as a string.
  window.dispatchEvent(new CustomEvent('WebChannelMessageToChrome', { detail: JSON.stringify({ id: 'account_updates', message: { command, data, messageId } }) }));
  return reply;
}

let engines = [];
if (oauth) {
  toFirefox('fxaccounts:fxa_status', { service: 'sync', context: 'oauth_webchannel_v1' }, 3000).then((status) => {
    engines = status?.capabilities?.engines ?? [];
  });
}

/** The Sync key for Firefox, encrypted to the key in the URL it built. */
async function keysJwe(sessionToken, kB) {
  const session = { value: sessionToken, type: 'sessionToken' };
  const data = await call('POST', '/v1/account/scoped-key-data', { client_id: oauth.get('client_id'), scope: oauth.get('scope') }, session);
  const timestamp = data[OLDSYNC]?.keyRotationTimestamp;
  if (!timestamp) throw new Error('This server did not grant the Sync scope.');
  const k = b64url(await hkdf(kB, 'oldsync', 64));
  const kid = `${timestamp}-${b64url((await sha256(kB)).slice(0, 16))}`;
  const jwk = JSON.parse(new TextDecoder().decode(unb64url(oauth.get('keys_jwk'))));
  const plaintext = utf8.encode(JSON.stringify({ [OLDSYNC]: { kty: 'oct', scope: OLDSYNC, k, kid } }));
  return new CompactEncrypt(plaintext).setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' }).encrypt({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y });
}

async function connectFirefox(email, signedIn, kB, action) {
  const link = await toFirefox('fxaccounts:can_link_account', { email, uid: signedIn.uid }, 60_000);
  if (!link?.ok) throw new Error('Firefox did not link this account.');
  const session = { value: signedIn.sessionToken, type: 'sessionToken' };
  const authorization = await call('POST', '/v1/oauth/authorization', {
    client_id: oauth.get('client_id'),
    state: oauth.get('state'),
    scope: oauth.get('scope'),
    access_type: oauth.get('access_type') ?? 'offline',
    code_challenge: oauth.get('code_challenge'),
    code_challenge_method: oauth.get('code_challenge_method'),
    keys_jwe: await keysJwe(signedIn.sessionToken, kB),
  }, session);
  // Firefox handles messages in order: login first, then the code it redeems itself.
  toFirefox('fxaccounts:login', { email, uid: signedIn.uid, sessionToken: signedIn.sessionToken, verified: true, services: { sync: { offeredEngines: engines, declinedEngines: [] } } });
  toFirefox('fxaccounts:oauth_login', { code: authorization.code, state: authorization.state, redirect: authorization.redirect, action });
}

// --- the forms ------------------------------------------------------------------------------
const MESSAGES = {
  101: 'There is already an account with this email. Sign in instead.',
  102: 'There is no account with this email. Check it, or create an account.',
  103: 'That is not the password of this account.',
  110: 'This link was used already or has expired. Ask the operator of this server for a new one.',
  114: (body) => `Too many attempts. Try again in ${body.retryAfter ?? 60} seconds.`,
  202: 'New accounts cannot be created here. Ask the operator of this server for one.',
};

function say(text, kind) {
  const m = $('message');
  m.textContent = text;
  m.className = kind ?? '';
}

function failure(err) {
  const known = err instanceof ServerError ? MESSAGES[err.errno] : undefined;
  say(typeof known === 'function' ? known(err.body) : known ?? err.message ?? String(err), 'error');
}

if (!window.isSecureContext || !crypto.subtle) {
  say('This page needs a secure connection (https, or http on localhost) to derive your keys.', 'error');
}

const mode = () => document.querySelector('input[name="mode"]:checked').value;
for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener('change', () => {
    const signup = mode() === 'signup';
    $('submit').textContent = signup ? 'Create account' : 'Sign in';
    $('password').autocomplete = signup ? 'new-password' : 'current-password';
  });
}

$('account').addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = $('email').value.trim().toLowerCase();
  const password = $('password').value;
  if (!email.includes('@')) return say('Enter your email address.', 'error');
  if (password.length < 8) return say('The password needs at least 8 characters.', 'error');
  $('submit').disabled = true;
  say(mode() === 'signup' ? 'Creating your account…' : 'Signing in…');
  try {
    const { authPW, unwrapBKey } = await credentials(email, password);
    const path = mode() === 'signup' ? '/v1/account/create?keys=true' : '/v1/account/login?keys=true';
    const signedIn = await call('POST', path, { email, authPW: hex(authPW), ...(invite && mode() === 'signup' ? { invite } : {}) });
    const kB = await fetchKB(signedIn.keyFetchToken, unwrapBKey);
    if (oauth) {
      await connectFirefox(email, signedIn, kB, mode() === 'signup' ? 'signup' : 'signin');
      say('Signed in. Firefox is syncing now; you can close this tab.', 'done');
    } else {
      say(`Signed in as ${email}. To sync, choose “Sign in to sync” in Firefox’s menu and sign in with this email and password.`, 'done');
    }
    $('password').value = '';
  } catch (err) {
    failure(err);
  } finally {
    $('submit').disabled = false;
  }
});

// The operator's one-time links: sign up for this address, or set a new password.
const invite = params.get('invite') ?? undefined;
if (invite) {
  document.querySelector('input[name="mode"][value="signup"]').checked = true;
  $('modes').hidden = true;
  $('title').textContent = 'Create your account';
  $('submit').textContent = 'Create account';
  $('password').autocomplete = 'new-password';
  $('email').value = params.get('email') ?? '';
  $('email').readOnly = true;
}

const resetToken = params.get('reset') ?? undefined;
if (resetToken) {
  $('account').hidden = true;
  $('reset').hidden = false;
  $('change-link').hidden = true;
  $('title').textContent = 'Choose a new password';
  $('reset-email').value = params.get('email') ?? '';
}

$('reset').addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = $('reset-email').value.trim().toLowerCase();
  const password = $('reset-password').value;
  if (password.length < 8) return say('The password needs at least 8 characters.', 'error');
  $('reset-submit').disabled = true;
  say('Setting your new password…');
  try {
    const { authPW } = await credentials(email, password);
    await call('POST', '/v1/account/reset', { email, authPW: hex(authPW), token: resetToken });
    $('reset-password').value = '';
    say('Your new password is set. Sign in again in each Firefox: choose “Sign in to sync” in its menu.', 'done');
  } catch (err) {
    failure(err);
    $('reset-submit').disabled = false;
  }
});

if (params.has('change')) {
  $('account').hidden = true;
  $('change').hidden = false;
  $('title').textContent = 'Change your password';
  $('change-link').hidden = true;
}

$('change').addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = $('change-email').value.trim().toLowerCase();
  const oldPassword = $('old-password').value;
  const newPassword = $('new-password').value;
  if (newPassword.length < 8) return say('The new password needs at least 8 characters.', 'error');
  say('Changing your password…');
  try {
    const old = await credentials(email, oldPassword);
    const signedIn = await call('POST', '/v1/account/login?keys=true', { email, authPW: hex(old.authPW) });
    const kB = await fetchKB(signedIn.keyFetchToken, old.unwrapBKey);
    const next = await credentials(email, newPassword);
    // The same kB under the new password: the Sync key, and what it encrypted, stay.
    await call('POST', '/v1/password/change', { email, oldAuthPW: hex(old.authPW), authPW: hex(next.authPW), wrapKb: hex(xor(kB, next.unwrapBKey)) });
    await call('POST', '/v1/session/destroy', {}, { value: signedIn.sessionToken, type: 'sessionToken' });
    say('Your password is changed. Your synced data is kept.', 'done');
  } catch (err) {
    failure(err);
  }
});

// Your own Couch: the storage moves there (or back) once the password is proven.
if (params.has('couch')) {
  $('account').hidden = true;
  $('own-couch').hidden = false;
  $('title').textContent = 'Your own Couch';
  $('couch-link').hidden = true;
}

async function ownCouch(remove) {
  const email = $('couch-email').value.trim().toLowerCase();
  const url = $('couch-url').value.trim();
  if (!remove && !/^https?:\/\//.test(url)) return say('Enter the URL of your Couch, with its user and password.', 'error');
  say(remove ? 'Moving your data back…' : 'Checking your Couch…');
  try {
    const { authPW } = await credentials(email, $('couch-password').value);
    const body = remove ? { email, authPW: hex(authPW), remove: true } : { email, authPW: hex(authPW), url, replica: $('couch-replica').checked };
    await call('POST', '/v1/syncgate/own-couch', body);
    $('couch-password').value = '';
    say(remove ? 'Your data is moving back to this server. Firefox keeps syncing meanwhile.' : 'Your Couch was accepted. Your data is moving there now; Firefox keeps syncing meanwhile.', 'done');
  } catch (err) {
    failure(err);
  }
}

$('own-couch').addEventListener('submit', (event) => {
  event.preventDefault();
  void ownCouch(false);
});
$('couch-back').addEventListener('click', () => void ownCouch(true));
