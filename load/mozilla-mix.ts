// Mozilla's load test for Sync storage, step for step: syncstorage-rs
// tools/syncstorage-loadtest/loadtest.py (Molotov), the scenario Mozilla runs against its own
// servers. Its weights, probabilities, sizes and order; only the random source is ours (seeded).
import { SessionAborted, type Session } from './session.js';

const META_PAYLOAD = 'This is the metaglobal payload which contains\nsome client data that doesnt look much\nlike this\n';
const WEIGHTS = {
  metaglobal: [40, 60, 0, 0, 0],
  distribution: [80, 15, 4, 1],
  count_distribution: [71, 15, 7, 4, 3],
  post_count_distribution: [67, 18, 9, 4, 2],
  delete_count_distribution: [99, 1, 0, 0, 0],
};
const PROBS = { get: 0.1, post: 0.2, deleteall: 0.01 };
const COLLS = ['bookmarks', 'forms', 'passwords', 'history', 'prefs'];
const BATCH_MAX_COUNT = 100;

interface PostResult {
  success: string[];
  failed: Record<string, unknown>;
  batch?: string;
}

export async function mozillaSession(s: Session): Promise<void> {
  const { rng } = s;
  const shouldDo = (name: keyof typeof PROBS) => rng.next() <= PROBS[name];
  const newer = () => String(Math.floor(s.now() - rng.int(3600, 360000)));

  // Respect the server limits.
  const config = JSON.parse((await s.call('GET info/configuration', 'GET', '/info/configuration', [200])).text) as Record<string, number>;
  const limit = (name: string, fallback: number) => (typeof config[name] === 'number' ? config[name] : fallback);
  const maxPayload = limit('max_record_payload_bytes', 2_097_152);
  const payload = META_PAYLOAD.slice(0, maxPayload);
  let n = Math.min(rng.weighted(WEIGHTS.metaglobal), limit('max_post_records', 100));
  const batchMaxCount = Math.min(BATCH_MAX_COUNT, limit('max_total_records', 10_000));
  const maxPostBytes = limit('max_post_bytes', 2_097_152);

  await s.call('GET info/collections', 'GET', '/info/collections', [200, 404]);
  for (let x = 0; x < n; x++) {
    const res = await s.call('GET storage/meta/global', 'GET', '/storage/meta/global', [200, 404]);
    if (res.status === 404) await s.call('PUT storage/meta/global', 'PUT', '/storage/meta/global', [200], { body: { id: 'global', payload } });
  }

  // Occasional reads of client records.
  if (shouldDo('get')) await s.call('GET storage/<coll>?full&newer', 'GET', `/storage/clients?full=1&newer=${newer()}`, [200, 404]);

  // Occasional updates to client records.
  if (shouldDo('post')) {
    const cid = String(rng.weighted(WEIGHTS.distribution));
    const res = await s.call('POST storage/<coll>', 'POST', '/storage/clients', [200], { body: [{ id: `client${cid}`, payload: cid.repeat(300) }] });
    checkPost(res.text, 1);
  }

  // GET requests to individual collections.
  n = rng.weighted(WEIGHTS.count_distribution);
  for (const col of rng.sample(COLLS, n)) await s.call('GET storage/<coll>?full&newer', 'GET', `/storage/${col}?full=1&newer=${newer()}`, [200, 404]);

  // POST requests with several records; roughly half of them as a transactional batch.
  n = rng.weighted(WEIGHTS.post_count_distribution);
  const transact = rng.int(0, 1) === 1;
  const cols = transact ? Array<string>(n).fill(rng.sample(COLLS, 1)[0]!) : rng.sample(COLLS, n);
  let batch: string | undefined;
  const filler = (await s.credentials()).id;
  for (let x = 0; x < n; x++) {
    const records: Array<{ id: string; payload: string }> = [];
    // Random batch size, skewed slightly towards the upper limit.
    const items = Math.min(rng.int(20, batchMaxCount + 80), batchMaxCount);
    let bytes = 0;
    for (let i = 0; i < items; i++) {
      const random = Buffer.from(Array.from({ length: 10 }, () => rng.int(0, 255)));
      const id = random.toString('base64url') + String(Math.floor((Date.now() / 1000) % 100 * 100000));
      // Random payload length: they can be big, but skew small (min 300, mean 450).
      const length = Math.min(Math.floor(rng.pareto(3) * 300), maxPayload);
      // Stop packing once the budget is spent, but always send at least one.
      if (records.length > 0 && bytes + length > maxPostBytes) break;
      records.push({ id, payload: filler.repeat(Math.ceil(length / filler.length) + 1).slice(0, length) });
      bytes += length;
    }
    let path = `/storage/${cols[x]}`;
    let kind = 'POST storage/<coll>';
    let status = 200;
    if (transact) {
      // Batch uploads answer 200 only on commit; 202 when a batch is opened or appended to.
      status = 202;
      if (x === 0) {
        path += '?batch=true';
        kind = 'POST storage/<coll>?batch=true';
      } else if (x === n - 1) {
        path += `?commit=true&batch=${batch}`;
        kind = 'POST storage/<coll>?batch&commit';
        status = 200;
      } else {
        path += `?batch=${batch}`;
        kind = 'POST storage/<coll>?batch';
      }
    }
    const res = await s.call(kind, 'POST', path, [status], { body: records });
    const result = checkPost(res.text, records.length);
    if (transact) batch = status === 202 ? result.batch : undefined;
  }

  // Deletes: some collections, or now and then everything; never both in one session.
  n = rng.weighted(WEIGHTS.delete_count_distribution);
  if (n > 0) {
    for (const col of rng.sample(COLLS, n)) await s.call('DELETE storage/<coll>', 'DELETE', `/storage/${col}`, [200, 204]);
  } else if (shouldDo('deleteall')) {
    await s.call('DELETE storage', 'DELETE', '/storage', [200], { headers: { 'X-Confirm-Delete': '1' } });
  }
}

/** The load test's assertions on a POST: every record succeeded, none failed. */
function checkPost(text: string, expected: number): PostResult {
  const result = JSON.parse(text) as PostResult;
  if (result.success?.length !== expected || Object.keys(result.failed ?? {}).length !== 0) {
    throw new SessionAborted(`POST answered ${result.success?.length ?? 0} of ${expected} records stored, ${Object.keys(result.failed ?? {}).length} failed`);
  }
  return result;
}
