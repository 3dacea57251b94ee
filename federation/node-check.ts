// What a Couch must prove before it becomes a node: everything a gateway checks of COUCH_URL
// at start (reachable, a supported version, a server admin, syncgate's design document taken
// and working: storage/couch/couch-backend.ts), and that _security actually keeps others out
// of a closed database. The probe database is deleted afterwards.
import { CouchBackend, type CouchInfo } from '../storage/couch/couch-backend.js';
import { CouchClient } from '../storage/couch/couch-client.js';

export class NodeCheckError extends Error {}

/** Resolves to what the node says of itself (version, features), recorded with the node. */
export async function checkNode(couchUrl: string, timeoutMs = 5000): Promise<CouchInfo> {
  const client = new CouchClient(couchUrl, { timeoutMs, readRetries: 0 });
  const backend = new CouchBackend(client);
  const closed = async (probe: string) => {
    // Without credentials, a user database must be closed: reads and writes refused.
    const anonymous = await fetch(`${client.publicUrl}/${probe}/_all_docs`, { signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
    if (!anonymous || (anonymous.status !== 401 && anonymous.status !== 403)) {
      throw new Error(`${client.publicUrl} does not honour _security: an anonymous read of a closed database answered ${anonymous?.status ?? 'nothing'}`);
    }
  };
  try {
    return await backend.verify({ probe: closed });
  } catch (e) {
    throw new NodeCheckError((e as Error).message);
  }
}
