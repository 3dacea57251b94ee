// A Sync 1.5 client for load: Hawk-signed requests (by the `hawk` library, as Firefox signs
// them) over node:http with a keep-alive agent. node:http rather than fetch: on a machine that
// the load generator shares with the server, fetch's cost per request would be counted against
// the server.
import http from 'node:http';
import https from 'node:https';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';

export interface Credentials {
  id: string;
  key: string;
  api_endpoint: string;
  /** Seconds since the epoch after which the server refuses the token. */
  expires: number;
}

export interface Response {
  status: number;
  text: string;
  /** The response's headers, names in lower case. */
  headers: http.IncomingHttpHeaders;
  /** Time from sending to the last byte of the body. */
  ms: number;
  /** Request and response body sizes, for the report. */
  bytesOut: number;
  bytesIn: number;
}

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: Infinity, scheduling: 'lifo' }),
};

/** One request, signed when credentials are given. */
export function request(
  url: URL,
  method: string,
  opts: { headers?: Record<string, string>; body?: string; credentials?: Credentials; timeoutMs?: number } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.credentials) {
    const { header } = Hawk.client.header(url.href, method, { credentials: { id: opts.credentials.id, key: opts.credentials.key, algorithm: 'sha256' } });
    headers.Authorization = header;
  }
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body, 'utf8');
  if (body) headers['Content-Length'] = String(body.length);
  const lib = url.protocol === 'https:' ? https : http;
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = lib.request(
      { agent: agents[url.protocol as 'http:' | 'https:'], hostname: url.hostname, port: url.port, method, path: url.pathname + url.search, headers },
      (res) => {
        const chunks: Buffer[] = [];
        let bytesIn = 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          bytesIn += c.length;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers, ms: performance.now() - start, bytesOut: body?.length ?? 0, bytesIn }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 60_000, () => req.destroy(new Error(`no answer in ${opts.timeoutMs ?? 60_000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Drops the pooled connections, so that a finished run leaves nothing open. */
export function closeConnections(): void {
  for (const a of Object.values(agents)) a.destroy();
}
