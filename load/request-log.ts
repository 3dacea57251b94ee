// syncgate's request log (server/logging.ts: one JSON line per request) read back as the
// traffic to replay: which user, when, and the shape of each storage request. Users are named
// in the log only by a keyed hash; the replay gives each one a synthetic user of its own.

/** One storage request of the log, as `syncgate load --replay` sends its like again. */
export interface LoggedRequest {
  /** Milliseconds after the first request of the log. */
  at: number;
  /** The synthetic user it is replayed as (0-based, in order of first appearance). */
  user: number;
  method: string;
  route: string;
  status: number;
  collection?: string;
  records?: number;
  bytes?: number;
  batch?: string;
  full?: boolean;
  cond?: 'ims' | 'ius';
}

export interface RequestLog {
  requests: LoggedRequest[];
  users: number;
  /** From the first request to the last. */
  seconds: number;
  /** Lines that were not a replayable storage request (other routes, other messages, no user). */
  skipped: number;
}

const REPLAYABLE = new Set([
  'GET info/collections',
  'GET info/quota',
  'GET info/collection_usage',
  'GET info/collection_counts',
  'GET info/configuration',
  'GET collection',
  'POST collection',
  'DELETE collection',
  'GET item',
  'PUT item',
  'DELETE item',
  'DELETE storage',
]);

interface Line {
  msg?: unknown;
  time?: unknown;
  user?: unknown;
  method?: unknown;
  route?: unknown;
  status?: unknown;
  ms?: unknown;
  collection?: unknown;
  records?: unknown;
  bytes?: unknown;
  batch?: unknown;
  full?: unknown;
  cond?: unknown;
}

const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);

/** The replayable requests of a request log's text, in time order. */
export function parseRequestLog(text: string): RequestLog {
  const users = new Map<string, number>();
  const requests: LoggedRequest[] = [];
  let skipped = 0;
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      skipped++;
      continue;
    }
    const { method, route, time, user, status } = line;
    if (
      (line.msg !== 'request' && line.msg !== 'request failed') ||
      typeof method !== 'string' ||
      typeof route !== 'string' ||
      typeof time !== 'number' ||
      typeof user !== 'string' ||
      typeof status !== 'number' ||
      !REPLAYABLE.has(`${method} ${route}`)
    ) {
      skipped++;
      continue;
    }
    let n = users.get(user);
    if (n === undefined) users.set(user, (n = users.size));
    // Logged when it ended: it was sent `ms` earlier.
    const r: LoggedRequest = { at: time - (typeof line.ms === 'number' ? line.ms : 0), user: n, method, route, status };
    if (typeof line.collection === 'string') r.collection = line.collection;
    const records = count(line.records);
    if (records !== undefined) r.records = records;
    const bytes = count(line.bytes);
    if (bytes !== undefined) r.bytes = bytes;
    if (typeof line.batch === 'string') r.batch = line.batch;
    if (line.full === true) r.full = true;
    if (line.cond === 'ims' || line.cond === 'ius') r.cond = line.cond;
    requests.push(r);
  }
  // Lines are written as requests end: in the order they were sent, counted from the first.
  requests.sort((a, b) => a.at - b.at);
  const t0 = requests[0]?.at ?? 0;
  for (const r of requests) r.at -= t0;
  const last = requests[requests.length - 1]?.at ?? 0;
  return { requests, users: users.size, seconds: last / 1000, skipped };
}
