// One logged request (request-log.ts) sent again for a synthetic user: the same method and
// route, collection, record count and upload size, precondition and batch step. What the user
// read and wrote before (timestamps, open batches, record ids) is kept on its device, so that
// a conditional request can be answered 304 and a batch appended to, as in the recorded day.
import type { LoggedRequest } from './request-log.js';
import type { Device, Session } from './session.js';

/** What a replayed user carries between its requests, beside Device's timestamps. */
export interface ReplayDevice extends Device {
  /** Open batch per collection. */
  batches: Record<string, string>;
  /** A record id written per collection, for the item reads and deletes that follow. */
  items: Record<string, string>;
}

export const replayDevice = (id: string): ReplayDevice => ({ id, collections: {}, busy: false, batches: {}, items: {} });

/** Answers a server may rightly give to the replayed request, whatever the log's was. */
const EXPECTED: Record<string, number[]> = {
  'GET info/collections': [200, 304],
  'GET collection': [200, 304, 404],
  'POST collection': [200, 202, 412],
  'DELETE collection': [200, 204, 404, 412],
  'GET item': [200, 304, 404],
  'PUT item': [200, 412],
  'DELETE item': [200, 204, 404, 412],
  'DELETE storage': [200, 204],
};

/** The fixed ids Firefox uses in these collections. */
const WELL_KNOWN: Record<string, string> = { meta: 'global', crypto: 'keys' };

/** JSON of one record of `size` bytes of payload, about as Firefox sends it. */
const record = (id: string, size: number) => ({ id, payload: 'x'.repeat(Math.max(1, size)) });

/** Per-record payload size for a logged upload: its bytes less the JSON around each payload. */
const payloadSize = (r: LoggedRequest, n: number) => (r.bytes === undefined ? 300 : Math.floor(r.bytes / Math.max(1, n)) - 40);

export async function replayRequest(s: Session, r: LoggedRequest): Promise<void> {
  const device = s.device as ReplayDevice;
  const kind = `${r.method} ${r.route}`;
  const expect = EXPECTED[kind] ?? [200];
  const coll = r.collection ?? 'history';
  const headers: Record<string, string> = {};
  const known = r.route === 'info/collections' ? device.seen : device.collections[coll];
  if (r.cond === 'ims') headers['X-If-Modified-Since'] = known ?? '0';
  if (r.cond === 'ius' && known !== undefined) headers['X-If-Unmodified-Since'] = known;
  const remember = (lastModified: unknown) => {
    if (typeof lastModified !== 'string') return;
    if (r.route === 'info/collections') device.seen = lastModified;
    else if (r.route === 'collection' && r.method !== 'DELETE') device.collections[coll] = lastModified;
  };

  switch (kind) {
    case 'GET collection': {
      const query = new URLSearchParams();
      if (r.full) query.set('full', '1');
      if (device.collections[coll] !== undefined) query.set('newer', device.collections[coll]);
      const res = await s.call(kind, 'GET', `/storage/${coll}${query.size ? `?${query}` : ''}`, expect, { headers });
      if (res.status === 200) remember(res.headers['x-last-modified']);
      return;
    }
    case 'POST collection': {
      const n = Math.max(1, r.records ?? 1);
      const size = payloadSize(r, n);
      const prefix = Math.floor(s.rng.next() * 2 ** 32).toString(36);
      const records = Array.from({ length: n }, (_, i) => record(`${prefix}${i}`, size));
      const open = device.batches[coll];
      let query = '';
      if (r.batch === 'open' || ((r.batch === 'append' || r.batch === 'commit') && open === undefined)) query = '?batch=true';
      else if (r.batch === 'append') query = `?batch=${open}`;
      if (r.batch === 'commit') query = open === undefined ? '?batch=true&commit=true' : `?batch=${open}&commit=true`;
      if (r.batch === 'open-commit') query = '?batch=true&commit=true';
      const res = await s.call(kind, 'POST', `/storage/${coll}${query}`, expect, { headers, body: records });
      if (res.status === 202) device.batches[coll] = (JSON.parse(res.text) as { batch: string }).batch;
      if (res.status === 200) {
        delete device.batches[coll];
        remember(res.headers['x-last-modified']);
      }
      device.items[coll] = records[0]!.id;
      return;
    }
    case 'DELETE collection':
      await s.call(kind, 'DELETE', `/storage/${coll}`, expect, { headers });
      delete device.collections[coll];
      delete device.batches[coll];
      return;
    case 'GET item':
    case 'DELETE item': {
      const id = WELL_KNOWN[coll] ?? device.items[coll] ?? 'unknown';
      await s.call(kind, r.method, `/storage/${coll}/${id}`, expect, { headers });
      if (r.method === 'DELETE' && id === device.items[coll]) delete device.items[coll];
      return;
    }
    case 'PUT item': {
      const id = WELL_KNOWN[coll] ?? (device.items[coll] ??= `r${Math.floor(s.rng.next() * 2 ** 32).toString(36)}`);
      const { payload } = record(id, payloadSize(r, 1));
      await s.call(kind, 'PUT', `/storage/${coll}/${id}`, expect, { headers, body: { payload } });
      return;
    }
    case 'DELETE storage':
      await s.call(kind, 'DELETE', '/storage', expect, { headers: { 'X-Confirm-Delete': '1' } });
      device.collections = {};
      device.batches = {};
      device.items = {};
      return;
    default: {
      // info/*: the route is the path.
      const res = await s.call(kind, 'GET', `/${r.route}`, [...expect, 304], { headers });
      if (res.status === 200) remember(res.headers['x-last-modified']);
    }
  }
}
