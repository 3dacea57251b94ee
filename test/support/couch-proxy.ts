// A pass-through proxy in front of a test Couch, for tests that must see what a gateway asks of
// its node: it counts a user database's requests by kind, and can cut the node's `_db_updates`
// feed (refuse it, drop the longpolls in flight) or deliver its answers late. Its URL carries
// the same credentials as the Couch's.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { basicAuth } from './couch.js';

export type CouchRequestKind = 'state-get' | 'state-put' | 'changes' | 'all_docs' | 'bulk_docs' | 'doc-get' | 'other';

function kindOf(method: string, path: string): CouchRequestKind {
  const p = path.replace(/^\/sync_[0-9]+/, '');
  if (/^\/state(\?|$)/.test(p)) return method === 'GET' ? 'state-get' : method === 'PUT' ? 'state-put' : 'other';
  if (p.startsWith('/_changes')) return 'changes';
  if (p.startsWith('/_all_docs')) return 'all_docs';
  if (p.startsWith('/_bulk_docs')) return 'bulk_docs';
  if (method === 'GET' && /^\/[^_]/.test(p)) return 'doc-get';
  return 'other';
}

export class CouchProxy {
  private readonly counts = new Map<CouchRequestKind, number>();
  feedRequests = 0;
  /** Refuse the feed (503) while set. */
  feedCut = false;
  /** Deliver each answer of the feed this much later. */
  feedDelayMs = 0;
  private readonly feedSockets = new Set<Socket>();
  private server!: http.Server;
  url!: string;

  constructor(private readonly couch: URL) {}

  count(kind: CouchRequestKind): number {
    return this.counts.get(kind) ?? 0;
  }

  /** Reads of a user's state document so far. */
  get stateReads(): number {
    return this.count('state-get');
  }

  snapshot(): Map<CouchRequestKind, number> {
    return new Map(this.counts);
  }

  /** The requests by kind since a snapshot (kinds with none left out). */
  since(before: Map<CouchRequestKind, number>): Partial<Record<CouchRequestKind, number>> {
    const out: Partial<Record<CouchRequestKind, number>> = {};
    for (const [k, n] of this.counts) if (n - (before.get(k) ?? 0) > 0) out[k] = n - (before.get(k) ?? 0);
    return out;
  }

  async start(): Promise<void> {
    const agent = new http.Agent({ keepAlive: true });
    this.server = http.createServer((req, res) => {
      const path = req.url ?? '/';
      const feed = path.startsWith('/_db_updates');
      if (/^\/sync_[0-9]+/.test(path)) {
        const kind = kindOf(req.method ?? 'GET', path);
        this.counts.set(kind, this.count(kind) + 1);
      }
      if (feed) {
        this.feedRequests++;
        if (this.feedCut) {
          res.writeHead(503, { 'Content-Type': 'application/json' }).end('{"error":"cut","reason":"cut by the test"}');
          return;
        }
        this.feedSockets.add(req.socket);
        req.socket.once('close', () => this.feedSockets.delete(req.socket));
      }
      const upstream = http.request(
        { agent, host: this.couch.hostname, port: this.couch.port, method: req.method, path, headers: { ...req.headers, host: this.couch.host } },
        (up) => {
          if (!feed || this.feedDelayMs === 0) {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
            return;
          }
          const chunks: Buffer[] = [];
          up.on('data', (c: Buffer) => chunks.push(c));
          up.on('end', () =>
            setTimeout(() => {
              res.writeHead(up.statusCode ?? 502, up.headers);
              res.end(Buffer.concat(chunks));
            }, this.feedDelayMs),
          );
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const u = new URL(this.couch);
    u.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.url = u.toString().replace(/\/$/, '');
  }

  /** Refuses the feed from now on, and drops the feed requests in flight. */
  cutFeed(): void {
    this.feedCut = true;
    for (const s of this.feedSockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** Whether the Couch offers `_db_updates` (Apache CouchDB with `_global_changes`; pouchdb-server does not). */
export async function nodeHasUpdateFeed(couchUrl: string): Promise<boolean> {
  const u = new URL(couchUrl);
  const auth: Record<string, string> = u.username ? { Authorization: basicAuth(u) } : {};
  u.username = '';
  u.password = '';
  const r = await fetch(new URL('/_db_updates?feed=normal&since=now', u), { headers: auth });
  await r.arrayBuffer();
  return r.ok;
}
