import assert from 'node:assert/strict';
// @ts-expect-error no types
import Hawk from 'hawk';
import { macMatches, parseHawkHeader, type HawkAttributes, type HawkRequest } from '../../server/auth/hawk.js';

const credentials = { id: 'dGhlLXRva2VuLWlk', key: 'a2V5LWZvci10aGUtdG9rZW4tMzItYnl0ZXMtbG9uZz0=', algorithm: 'sha256' };
const URL_ = 'http://sync.example.com:8000/1.5/42/storage/bookmarks?full=1&newer=12.34';
const REQ: HawkRequest = { method: 'GET', resource: '/1.5/42/storage/bookmarks?full=1&newer=12.34', host: 'sync.example.com', port: 8000 };

function libHeader(url: string, method: string, extra: Record<string, unknown> = {}): string {
  return Hawk.client.header(url, method, { credentials, ...extra }).header as string;
}

function parsed(header: string): HawkAttributes {
  const a = parseHawkHeader(header);
  assert.ok(a, `parses ${header}`);
  return a;
}

describe('Hawk (server/auth/hawk.ts)', () => {
  describe('parseHawkHeader', () => {
    it('accepts the header the hawk library produces and reads id, ts, nonce and mac', () => {
      const header = libHeader(URL_, 'GET', { timestamp: 1700000000, nonce: 'abc123' });
      const a = parsed(header);
      assert.equal(a.id, credentials.id);
      assert.equal(a.ts, '1700000000');
      assert.equal(a.nonce, 'abc123');
      assert.match(a.mac, /^[A-Za-z0-9+/]+=*$/);
      assert.equal(a.hash, undefined);
      assert.equal(a.ext, undefined);
    });

    it('accepts hawk library headers with hash and ext attributes', () => {
      const a = parsed(libHeader(URL_, 'PUT', { payload: '{"payload":"x"}', contentType: 'application/json', ext: 'some-ext' }));
      assert.ok(a.hash);
      assert.equal(a.ext, 'some-ext');
    });

    it('accepts the header Firefox writes (id, ts, nonce, mac with ", " separators)', () => {
      const a = parsed('Hawk id="abc=", ts="1700000000", nonce="bm9uY2U=", mac="bWFj"');
      assert.equal(a.id, 'abc=');
      assert.equal(a.mac, 'bWFj');
    });

    it('rejects malformed headers', () => {
      const good = 'Hawk id="abc", ts="1700000000", nonce="n", mac="m"';
      assert.ok(parseHawkHeader(good));
      const bad = [
        '',
        'Hawk',
        'Hawk ',
        'Bearer abc',
        'hawk id="abc", ts="1700000000", nonce="n", mac="m"',
        'HawkHawk id="abc", ts="1700000000", nonce="n", mac="m"',
        'Hawk ts="1700000000", nonce="n", mac="m"', // no id
        'Hawk id="abc", nonce="n", mac="m"', // no ts
        'Hawk id="abc", ts="1700000000", mac="m"', // no nonce
        'Hawk id="abc", ts="1700000000", nonce="n"', // no mac
        'Hawk id="abc", ts="soon", nonce="n", mac="m"', // ts not a number
        'Hawk id="abc", ts="-5", nonce="n", mac="m"',
        'Hawk id="abc", ts="1700000000", nonce="n", mac="m", mac="m2"', // duplicate
        'Hawk id="abc", ts="1700000000", nonce="n", mac="m", color="red"', // unknown attribute
        'Hawk id=abc, ts="1700000000", nonce="n", mac="m"', // unquoted
        'Hawk id="abc, ts="1700000000", nonce="n", mac="m"', // unbalanced quote
        'Hawk id="a"b", ts="1700000000", nonce="n", mac="m"',
        'Hawk id="abc" ts="1700000000" nonce="n" mac="m"', // no commas
        'Hawk id="", ts="1700000000", nonce="n", mac="m"', // empty id
      ];
      for (const header of bad) assert.equal(parseHawkHeader(header), undefined, header);
    });
  });

  describe('macMatches', () => {
    const key = credentials.key;

    it('is true for a hawk library header for the same method, path+query, host and port', () => {
      assert.equal(macMatches(key, parsed(libHeader(URL_, 'GET')), REQ), true);
    });

    it('is true with hash and ext from the hawk library (both are MACed)', () => {
      const a = parsed(libHeader(URL_, 'PUT', { payload: '[]', contentType: 'application/json', ext: 'x' }));
      assert.equal(macMatches(key, a, { ...REQ, method: 'PUT' }), true);
      assert.equal(macMatches(key, { ...a, ext: 'y' }, { ...REQ, method: 'PUT' }), false);
      assert.equal(macMatches(key, { ...a, hash: 'AAAA' }, { ...REQ, method: 'PUT' }), false);
      const noHash: HawkAttributes = { ...a };
      delete noHash.hash;
      assert.equal(macMatches(key, noHash, { ...REQ, method: 'PUT' }), false);
    });

    it('uses the default port of the scheme the client signed (443 for https, 80 for http)', () => {
      const https = parsed(libHeader('https://sync.example.com/1.5/42/info/collections', 'GET'));
      const req: HawkRequest = { method: 'GET', resource: '/1.5/42/info/collections', host: 'sync.example.com', port: 443 };
      assert.equal(macMatches(key, https, req), true);
      assert.equal(macMatches(key, https, { ...req, port: 80 }), false);
      const http = parsed(libHeader('http://sync.example.com/1.5/42/info/collections', 'GET'));
      assert.equal(macMatches(key, http, { ...req, port: 80 }), true);
    });

    it('compares the host case-insensitively', () => {
      const a = parsed(libHeader(URL_, 'GET'));
      assert.equal(macMatches(key, a, { ...REQ, host: 'SYNC.Example.COM' }), true);
    });

    it('is false when the method differs', () => {
      assert.equal(macMatches(key, parsed(libHeader(URL_, 'GET')), { ...REQ, method: 'POST' }), false);
      assert.equal(macMatches(key, parsed(libHeader(URL_, 'DELETE')), REQ), false);
    });

    it('is false when the path or the query differs', () => {
      const a = parsed(libHeader(URL_, 'GET'));
      assert.equal(macMatches(key, a, { ...REQ, resource: '/1.5/42/storage/history?full=1&newer=12.34' }), false);
      assert.equal(macMatches(key, a, { ...REQ, resource: '/1.5/42/storage/bookmarks?full=1&newer=12.35' }), false);
      assert.equal(macMatches(key, a, { ...REQ, resource: '/1.5/42/storage/bookmarks' }), false);
      assert.equal(macMatches(key, a, { ...REQ, resource: '/prefix/1.5/42/storage/bookmarks?full=1&newer=12.34' }), false);
    });

    it('is false when the host differs', () => {
      assert.equal(macMatches(key, parsed(libHeader(URL_, 'GET')), { ...REQ, host: 'sync.example.org' }), false);
    });

    it('is false when the port differs', () => {
      assert.equal(macMatches(key, parsed(libHeader(URL_, 'GET')), { ...REQ, port: 8001 }), false);
    });

    it('is false with another key, or when ts, nonce or mac were changed', () => {
      const a = parsed(libHeader(URL_, 'GET'));
      assert.equal(macMatches('b' + key.slice(1), a, REQ), false);
      assert.equal(macMatches(key, { ...a, ts: String(Number(a.ts) + 1) }, REQ), false);
      assert.equal(macMatches(key, { ...a, nonce: a.nonce + 'x' }, REQ), false);
      assert.equal(macMatches(key, { ...a, mac: a.mac.slice(0, -2) }, REQ), false);
      assert.equal(macMatches(key, { ...a, mac: '' }, REQ), false);
    });

    it('uses the key text itself as the HMAC key, not its base64 decoding', () => {
      const a = parsed(libHeader(URL_, 'GET'));
      const decoded = Buffer.from(key, 'base64').toString('latin1');
      assert.equal(macMatches(decoded, a, REQ), false);
      assert.equal(macMatches(key, a, REQ), true);
    });
  });
});
