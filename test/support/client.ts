// A Sync client as Firefox is one: tokenlib credentials and Hawk-signed HTTP requests, signed
// by the independent `hawk` library (not our own server code).
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';

export interface Credentials {
  id: string;
  key: string;
  uid: number;
  api_endpoint: string;
}

export interface SyncResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (throws when it is not). */
  json<T = any>(): T;
  header(name: string): string | null;
}

export interface RequestOptions {
  /** A value is sent as JSON text; a string is sent as is. */
  body?: unknown;
  headers?: Record<string, string>;
  contentType?: string | null;
}

export class SyncClient {
  constructor(readonly creds: Credentials) {}

  get uid(): number {
    return this.creds.uid;
  }

  url(path: string): string {
    return this.creds.api_endpoint + path;
  }

  async request(method: string, path: string, opts: RequestOptions = {}): Promise<SyncResponse> {
    const url = this.url(path);
    const { header } = Hawk.client.header(url, method, {
      credentials: { id: this.creds.id, key: this.creds.key, algorithm: 'sha256' },
    });
    return rawRequest(method, url, { ...opts, headers: { Authorization: header, ...opts.headers } });
  }

  get(path: string, headers?: Record<string, string>) {
    return this.request('GET', path, headers ? { headers } : {});
  }
  put(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request('PUT', path, headers ? { body, headers } : { body });
  }
  post(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request('POST', path, headers ? { body, headers } : { body });
  }
  delete(path: string, headers?: Record<string, string>) {
    return this.request('DELETE', path, headers ? { headers } : {});
  }
}

export async function rawRequest(method: string, url: string, opts: RequestOptions = {}): Promise<SyncResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    if (opts.contentType !== null) headers['Content-Type'] = opts.contentType ?? 'application/json';
  }
  const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    json: () => JSON.parse(text),
    header: (name: string) => res.headers.get(name),
  };
}
