// The design document of every user database. It is code: versioned here, installed by the
// program when a database is first opened, upgraded when this version is newer and never
// downgraded (an older gateway leaves a newer design document alone).
//
// Listings come from the gateway's in-memory record index (storage/engine/record-index.ts) on
// every store, so the document has no views. validate_doc_update keeps records well-formed on
// nodes we do not run ourselves.

export const DESIGN_ID = '_design/syncgate';
// 2: validate_doc_update alone, as an anonymous function (Apache CouchDB refuses named ones).
//    Version 1's two views are gone: nothing queried them (listings come from the gateway's
//    record index), yet CouchDB's background indexer (ken) rebuilt them after every write.
export const DESIGN_VERSION = 2;

/* eslint-disable */
// This function runs inside CouchDB's JavaScript engine (SpiderMonkey/QuickJS): plain ES5, no
// closures over module scope. It is exported as a function so tests can call it.

export function validateDocUpdate(newDoc: any, _oldDoc: any, userCtx: any): void {
  function reject(why: string): never {
    throw { forbidden: why };
  }
  var isAdmin = userCtx && userCtx.roles && userCtx.roles.indexOf('_admin') !== -1;
  if (newDoc._deleted) return;
  var id = newDoc._id;
  if (id.indexOf('r:') === 0) {
    if (typeof newDoc.c !== 'string' || !/^[a-zA-Z0-9._-]{1,32}$/.test(newDoc.c)) reject('bad collection');
    if (typeof newDoc.i !== 'string' || !/^[ -~]{1,64}$/.test(newDoc.i)) reject('bad id');
    if (id !== 'r:' + newDoc.c + ':' + newDoc.i) reject('_id does not match collection and id');
    if (typeof newDoc.w !== 'number' || newDoc.w % 1 !== 0 || newDoc.w < 0) reject('bad w');
    if (typeof newDoc.m !== 'number' || newDoc.m % 1 !== 0 || newDoc.m < 0) reject('bad m');
    if (typeof newDoc.p !== 'string') reject('bad payload');
    if (typeof newDoc.n !== 'number') reject('bad size');
    if (newDoc.s !== undefined && (typeof newDoc.s !== 'number' || newDoc.s % 1 !== 0)) reject('bad sortindex');
    if (newDoc.x !== undefined && (typeof newDoc.x !== 'number' || newDoc.x % 1 !== 0)) reject('bad expiry');
    return;
  }
  if (id === 'state') {
    if (typeof newDoc.storage !== 'number' || typeof newDoc.collections !== 'object') reject('bad state');
    return;
  }
  if (/^(b|q|j):/.test(id)) return;
  if (!isAdmin) reject('unknown document kind');
}

/**
 * A function's source as CouchDB's JavaScript engines take it: an anonymous `function (…) {…}`
 * expression. `.toString()` of a named function keeps its name, which Apache CouchDB refuses
 * ("Expression does not eval to a function") although pouchdb-server accepts it.
 */
export function couchSource(fn: (...args: any[]) => unknown): string {
  const src = fn.toString();
  const anonymous = src.replace(/^function\s*[A-Za-z_$][\w$]*\s*\(/, 'function (');
  if (!anonymous.startsWith('function (')) throw new Error(`design function ${fn.name} is not a plain function declaration`);
  return anonymous;
}

export function buildDesignDoc(): Record<string, unknown> {
  return {
    _id: DESIGN_ID,
    version: DESIGN_VERSION,
    language: 'javascript',
    validate_doc_update: couchSource(validateDocUpdate),
  };
}
