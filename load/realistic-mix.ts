// Sessions shaped like real desktops (syncstorage-rs docs/src/faq.md "When do things sync?" and
// "Syncing, step by step"): a desktop syncs every 10 minutes while in use, and most of those
// syncs find nothing new anywhere, so they end at a 304 on a conditional info/collections. A
// user has several devices; what one uploads, the others download at their next sync. A token
// lasts an hour, so with a token server about one sync in six starts with an exchange.
import type { Random } from './rng.js';
import { SessionAborted, type Session } from './session.js';

/** Chance that a device has something of its own to upload at a sync. */
const LOCAL_CHANGE = 0.15;
/** Chance that a device rewrites its record in the clients collection (commands, name). */
const CLIENT_RECORD = 0.03;
/** With a token server: the share of syncs that start with a new token (hourly, every 10 min). */
const TOKEN_EXCHANGE = 1 / 6;

/** What a desktop uploads when it has changes: collection, weight, records, payload size. */
const CHANGES: Array<{ collection: string; weight: number; records: [number, number]; bytes: number }> = [
  { collection: 'history', weight: 55, records: [1, 10], bytes: 300 },
  { collection: 'tabs', weight: 30, records: [1, 1], bytes: 1500 },
  { collection: 'bookmarks', weight: 7, records: [1, 3], bytes: 400 },
  { collection: 'forms', weight: 5, records: [1, 5], bytes: 200 },
  { collection: 'passwords', weight: 3, records: [1, 1], bytes: 600 },
];

/** What a user's first device uploads at its first sync, per collection. */
const FIRST_UPLOAD: Record<string, { records: number; bytes: number }> = {
  bookmarks: { records: 50, bytes: 400 },
  history: { records: 200, bytes: 300 },
  passwords: { records: 10, bytes: 600 },
  forms: { records: 20, bytes: 200 },
  prefs: { records: 1, bytes: 2000 },
};

// Firefox's order (faq.md): clients first, then the engines.
const ORDER = ['clients', 'prefs', 'passwords', 'tabs', 'bookmarks', 'addons', 'addresses', 'forms', 'history'];

const payload = (rng: Random, bytes: number) => 'e'.repeat(Math.min(Math.floor(rng.pareto(3) * bytes * (2 / 3)), 256 * 1024));
const guid = (rng: Random) => Buffer.from(Array.from({ length: 9 }, () => rng.int(0, 255))).toString('base64url');

interface InfoCollections {
  [collection: string]: number;
}

/** A device's first sync: the user's first device creates its storage, the others download it. */
export async function realisticFirstSync(s: Session): Promise<void> {
  const { rng, device } = s;
  const res = await s.call('GET info/collections', 'GET', '/info/collections', [200]);
  const info = JSON.parse(res.text) as InfoCollections;
  if (info.meta === undefined) {
    await upload(s, 'meta', [{ id: 'global', payload: payload(rng, 300) }], 'PUT storage/meta/global');
    await upload(s, 'crypto', [{ id: 'keys', payload: payload(rng, 300) }], 'PUT storage/crypto/keys');
    for (const [collection, { records, bytes }] of Object.entries(FIRST_UPLOAD)) {
      for (let i = 0; i < records; i += 100) {
        const n = Math.min(100, records - i);
        await upload(s, collection, Array.from({ length: n }, () => ({ id: guid(rng), payload: payload(rng, bytes) })));
      }
    }
  } else {
    await download(s, info);
  }
  await upload(s, 'clients', [{ id: device.id, payload: payload(rng, 500) }]);
  await upload(s, 'tabs', [{ id: device.id, payload: payload(rng, 1500) }]);
  device.seen = (await s.call('GET info/collections', 'GET', '/info/collections', [200])).headers['x-last-modified'] as string;
}

export async function realisticSession(s: Session): Promise<void> {
  const { rng, device } = s;
  if (s.deps.auth.kind === 'token' && rng.next() < TOKEN_EXCHANGE) await s.credentials(true);
  const headers: Record<string, string> = device.seen ? { 'X-If-Modified-Since': device.seen } : {};
  const res = await s.call('GET info/collections', 'GET', '/info/collections', [200, 304], { headers });
  if (res.status === 200) {
    await download(s, JSON.parse(res.text) as InfoCollections);
    device.seen = res.headers['x-last-modified'] as string;
  }
  if (rng.next() < LOCAL_CHANGE) {
    const change = CHANGES[rng.weighted(CHANGES.map((c) => c.weight))]!;
    const n = rng.int(...change.records);
    // Tabs: one record per device, rewritten; the others: new records.
    const records = Array.from({ length: n }, () => ({ id: change.collection === 'tabs' ? device.id : guid(rng), payload: payload(rng, change.bytes) }));
    await upload(s, change.collection, records);
  }
  if (rng.next() < CLIENT_RECORD) await upload(s, 'clients', [{ id: device.id, payload: payload(rng, 500) }]);
}

/** Fetches what changed since this device last looked, collection by collection. */
async function download(s: Session, info: InfoCollections): Promise<void> {
  const { device } = s;
  const names = Object.keys(info).sort((a, b) => rank(a) - rank(b));
  for (const collection of names) {
    const known = device.collections[collection];
    if (known !== undefined && Number(known) >= info[collection]!) continue;
    if (collection === 'meta') await s.call('GET storage/meta/global', 'GET', '/storage/meta/global', [200]);
    else if (collection === 'crypto') await s.call('GET storage/crypto/keys', 'GET', '/storage/crypto/keys', [200]);
    else await s.call('GET storage/<coll>?full&newer', 'GET', `/storage/${collection}?full=1&newer=${known ?? 0}`, [200]);
    device.collections[collection] = String(info[collection]);
  }
}

const rank = (c: string) => (c === 'meta' || c === 'crypto' ? -1 : ORDER.indexOf(c) === -1 ? ORDER.length : ORDER.indexOf(c));

/**
 * Uploads records as Firefox does: conditional on the collection's time as this device last saw
 * it. On 412 (another device wrote first) it downloads and tries once more.
 */
async function upload(s: Session, collection: string, records: Array<{ id: string; payload: string }>, putKind?: string): Promise<void> {
  const { device } = s;
  for (let attempt = 0; ; attempt++) {
    const known = device.collections[collection];
    const headers: Record<string, string> = { 'X-If-Unmodified-Since': known ?? '0' };
    const res = putKind
      ? await s.call(putKind, 'PUT', `/storage/${collection}/${records[0]!.id}`, [200, 412], { headers, body: { payload: records[0]!.payload } })
      : await s.call('POST storage/<coll>', 'POST', `/storage/${collection}`, [200, 412], { headers, body: records });
    if (res.status === 200) {
      device.collections[collection] = res.headers['x-last-modified'] as string;
      return;
    }
    if (attempt > 0) throw new SessionAborted(`${collection}: 412 twice`);
    // Another device wrote first: what it wrote, then the collection's time as it is now.
    await s.call('GET storage/<coll>?full&newer', 'GET', `/storage/${collection}?full=1&newer=${known ?? 0}`, [200, 404]);
    const info = JSON.parse((await s.call('GET info/collections (after 412)', 'GET', '/info/collections', [200])).text) as InfoCollections;
    device.collections[collection] = String(info[collection] ?? 0);
  }
}
