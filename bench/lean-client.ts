// The benchmark's stand-in for Firefox: Hawk-signed requests (by the `hawk` library, as the
// tests sign them) over node:http with a keep-alive agent. Firefox's own CPU is spent on the
// user's machine, not on the server's; the test client (fetch) costs this process about twice
// as much per request, and on a machine shared by the load generator, the gateway and Couch
// that cost would be counted against the gateway.
import http from 'node:http';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';

export interface LeanResponse {
  status: number;
  text: string;
  header(name: string): string | undefined;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export class LeanSyncClient {
  private readonly base: URL;

  constructor(private readonly creds: { id: string; key: string; api_endpoint: string }) {
    this.base = new URL(creds.api_endpoint);
  }

  get(path: string, headers: Record<string, string> = {}): Promise<LeanResponse> {
    return this.request('GET', path, headers);
  }

  post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<LeanResponse> {
    return this.request('POST', path, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(body));
  }

  private request(method: string, path: string, headers: Record<string, string>, body?: string): Promise<LeanResponse> {
    const url = this.creds.api_endpoint + path;
    const { header } = Hawk.client.header(url, method, { credentials: { id: this.creds.id, key: this.creds.key, algorithm: 'sha256' } });
    return new Promise((resolve, reject) => {
      const req = http.request(
        { agent, host: this.base.hostname, port: this.base.port, method, path: this.base.pathname + path, headers: { Authorization: header, ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const h = res.headers;
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), header: (name) => h[name.toLowerCase()] as string | undefined });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }
}
