// Turns a POST body's items into the records to store and the per-item failures (spec 3.8):
// whole-request defects fail the request; item defects and per-POST limits fail the item.
import { SyncError } from '../../common/errors.js';
import type { PostInput } from '../../storage/store.js';
import type { Limits } from '../config.js';
import { bsoIdOf, checkBso, isBrokenCrypto } from './bso.js';

export function postInput(items: unknown[], collection: string, limits: Limits): PostInput {
  const seen = new Set<string>();
  const ids: string[] = [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new SyncError('invalid-bso', 'item is not an object');
    const id = bsoIdOf((item as { id?: unknown }).id);
    if (id === undefined) throw new SyncError('invalid-bso', 'item has no id');
    if (seen.has(id)) throw new SyncError('invalid-bso', 'duplicate id');
    seen.add(id);
    ids.push(id);
  }
  const input: PostInput = { records: [], failed: {} };
  // Never decremented for failed items: once over, every later item fails too (as RS and PY).
  let bytes = 0;
  for (const [i, item] of items.entries()) {
    const id = ids[i] as string;
    const check = checkBso(item);
    if (!check.ok) {
      input.failed[id] = check.reason;
      continue;
    }
    if (isBrokenCrypto(collection, check.bso)) throw new SyncError('invalid-bso', 'known-broken crypto payload');
    const size = check.bso.payload === undefined ? 0 : Buffer.byteLength(check.bso.payload, 'utf8');
    bytes += size;
    if (size > limits.maxRecordPayloadBytes || bytes > limits.maxPostBytes) {
      input.failed[id] = 'retry bytes';
      continue;
    }
    if (input.records.length >= limits.maxPostRecords) {
      input.failed[id] = 'retry bso';
      continue;
    }
    input.records.push(check.bso);
  }
  return input;
}
