// Node credentials at rest: the user and password of a node's Couch URL are kept in the
// registry only as a JWE (dir, A256GCM) under a key from the configuration, and the URL
// itself without them. Nothing that leaves this module in a log line or an API answer holds
// them.
import { hkdfSync } from 'node:crypto';
import { compactDecrypt, CompactEncrypt } from 'jose';

export interface NodeCredentials {
  username: string;
  password: string;
}

export class NodeSecrets {
  private readonly key: Uint8Array;

  /** `secret`: SYNCGATE_NODE_SECRET (or the one generated in the data folder). */
  constructor(secret: string) {
    this.key = new Uint8Array(hkdfSync('sha256', secret, Buffer.alloc(0), 'syncgate/node-credentials', 32));
  }

  async seal(creds: NodeCredentials): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(creds)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', cty: 'syncgate-node-credentials' })
      .encrypt(this.key);
  }

  async open(jwe: string): Promise<NodeCredentials> {
    const { plaintext } = await compactDecrypt(jwe, this.key);
    return JSON.parse(new TextDecoder().decode(plaintext)) as NodeCredentials;
  }
}

/** Splits `http://user:pass@host:5984` into the URL without credentials and the credentials. */
export function splitCouchUrl(url: string): { url: string; credentials?: NodeCredentials } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('a node URL must be http(s)');
  const credentials = u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined;
  u.username = '';
  u.password = '';
  const bare = u.toString().replace(/\/+$/, '');
  return credentials ? { url: bare, credentials } : { url: bare };
}

/** The URL a Couch client needs: credentials put back in. */
export function joinCouchUrl(url: string, credentials?: NodeCredentials): string {
  if (!credentials) return url;
  const u = new URL(url);
  u.username = encodeURIComponent(credentials.username);
  u.password = encodeURIComponent(credentials.password);
  return u.toString().replace(/\/+$/, '');
}
