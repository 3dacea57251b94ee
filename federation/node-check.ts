// What a Couch must prove before it becomes a node: reachable, a supported version, our user
// may create databases and design documents, and _security actually keeps others out. A
// probe database is created for the test and deleted afterwards.
import { randomBytes } from 'node:crypto';
import { designDoc } from '../couch-design/index.js';
import { CouchBackend } from '../storage/couch/couch-backend.js';
import { CouchClient } from '../storage/couch/couch-client.js';
import { CouchDocDb } from '../storage/couch/couch-doc-db.js';

export class NodeCheckError extends Error {}

export async function checkNode(couchUrl: string, timeoutMs = 5000): Promise<void> {
  const client = new CouchClient(couchUrl, { timeoutMs, readRetries: 0 });
  const backend = new CouchBackend(client);
  try {
    await backend.verify();
  } catch (e) {
    throw new NodeCheckError((e as Error).message);
  }
  const probe = `syncgate_probe_${randomBytes(6).toString('hex')}`;
  try {
    try {
      await backend.ensureDatabase(probe);
    } catch (e) {
      throw new NodeCheckError(`cannot create a database on ${client.publicUrl}: ${(e as Error).message}`);
    }
    const db = new CouchDocDb(client, probe, async () => {});
    try {
      if ((await designDoc.install(db)) !== 'installed') throw new Error('design document not written');
    } catch (e) {
      throw new NodeCheckError(`cannot write design documents on ${client.publicUrl}: ${(e as Error).message}`);
    }
    // Without credentials, a user database must be closed: reads and writes refused.
    const anonymous = await fetch(`${client.publicUrl}/${probe}/_all_docs`, { signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
    if (!anonymous || (anonymous.status !== 401 && anonymous.status !== 403)) {
      throw new NodeCheckError(`${client.publicUrl} does not honour _security: an anonymous read of a closed database answered ${anonymous?.status ?? 'nothing'}`);
    }
  } finally {
    await client.request({ method: 'DELETE', db: probe }).catch(() => undefined); // best effort
  }
}
