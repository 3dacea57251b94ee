// Hawk header authentication as Sync uses it (spec 7.4): the MAC over ts, nonce, method,
// path+query as sent, host, port, hash and ext. Like Mozilla's servers, no timestamp window
// and no nonce cache (production never enforced them; Firefox's clock may be off), and a
// `hash` attribute is MACed but not checked against the body.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface HawkAttributes {
  id: string;
  ts: string;
  nonce: string;
  mac: string;
  hash?: string;
  ext?: string;
  app?: string;
  dlg?: string;
}

const ATTR = /^\s*([a-z]+)="([^"\\]*)"\s*(?:,|$)/;
const ALLOWED = new Set(['id', 'ts', 'nonce', 'mac', 'hash', 'ext', 'app', 'dlg']);

export function parseHawkHeader(header: string): HawkAttributes | undefined {
  if (!header.startsWith('Hawk ')) return undefined;
  let rest = header.slice(5);
  const attrs: Record<string, string> = {};
  while (rest.trim() !== '') {
    const m = ATTR.exec(rest);
    if (!m) return undefined;
    const [whole, name, value] = m as unknown as [string, string, string];
    if (!ALLOWED.has(name) || name in attrs) return undefined;
    attrs[name] = value;
    rest = rest.slice(whole.length);
  }
  if (!attrs.id || !attrs.ts || !attrs.nonce || !attrs.mac || !/^\d+$/.test(attrs.ts)) return undefined;
  return attrs as unknown as HawkAttributes;
}

export interface HawkRequest {
  method: string;
  /** Path and query exactly as the client sent them. */
  resource: string;
  host: string;
  port: number;
}

export function normalized(a: HawkAttributes, req: HawkRequest): string {
  let s =
    `hawk.1.header\n${a.ts}\n${a.nonce}\n${req.method.toUpperCase()}\n${req.resource}\n` +
    `${req.host.toLowerCase()}\n${req.port}\n${a.hash ?? ''}\n`;
  s += `${(a.ext ?? '').replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n`;
  if (a.app) s += `${a.app}\n${a.dlg ?? ''}\n`;
  return s;
}

export function computeMac(key: string | Buffer, a: HawkAttributes, req: HawkRequest): string {
  return createHmac('sha256', key).update(normalized(a, req), 'utf8').digest('base64');
}

export function macMatches(key: string | Buffer, a: HawkAttributes, req: HawkRequest): boolean {
  const expected: Buffer = Buffer.from(computeMac(key, a, req));
  const given: Buffer = Buffer.from(a.mac);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
