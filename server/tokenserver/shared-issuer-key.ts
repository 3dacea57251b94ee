// The local issuer's signing key in the registry, for gateways that share one: sealed as a JWE
// (dir, A256GCM) under a key derived from SYNC_MASTER_SECRET, which those gateways share
// already (each verifies the storage tokens of the others). The first gateway to start stores
// its key; the others take it. A copy of the registry alone signs no token. The document is
// named by a fingerprint of the sealing key, so gateways of another secret on the same registry
// (a test Couch, a second deployment) keep a key of their own instead of one they cannot open.
import { createHash, hkdfSync } from 'node:crypto';
import { compactDecrypt, CompactEncrypt, type JWK } from 'jose';
import type { Doc, DocDb } from '../../storage/doc-db.js';
import type { SharedIssuerKey } from './local-accounts.js';

interface IssuerKeyDoc extends Doc {
  type: 'issuer-key';
  jwe: string;
}

export class RegistryIssuerKey implements SharedIssuerKey {
  private readonly key: Uint8Array;
  private readonly id: string;

  constructor(
    private readonly db: DocDb,
    masterSecret: string,
  ) {
    this.key = new Uint8Array(hkdfSync('sha256', masterSecret, Buffer.alloc(0), 'syncgate/issuer-key', 32));
    this.id = `issuer-key:${createHash('sha256').update(this.key).digest('hex').slice(0, 16)}`;
  }

  async get(): Promise<JWK | undefined> {
    const doc = await this.db.get<IssuerKeyDoc>(this.id);
    if (!doc) return undefined;
    const { plaintext } = await compactDecrypt(doc.jwe, this.key);
    return JSON.parse(new TextDecoder().decode(plaintext)) as JWK;
  }

  async offer(jwk: JWK): Promise<JWK> {
    const jwe = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(jwk)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', cty: 'syncgate-issuer-key' })
      .encrypt(this.key);
    // A conflict: another gateway stored its key first, and that one is everybody's.
    if ((await this.db.put({ _id: this.id, type: 'issuer-key', jwe } as IssuerKeyDoc)) === 'conflict') {
      const there = await this.get();
      if (!there) throw new Error('the registry\'s issuer key vanished while it was being stored');
      return there;
    }
    return jwk;
  }
}
