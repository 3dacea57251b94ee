// A storage thread of the embedded store: it owns the PouchDB (LevelDB) databases of the users
// the gateway assigns to it and answers their document operations. PouchDB's own work (JSON of
// every document, revision trees, LevelDB's callbacks) was half of the embedded gateway's CPU
// time, all on the one thread that also speaks HTTP; here it runs beside it.
import { parentPort, workerData } from 'node:worker_threads';
import type { DocDb } from '../doc-db.js';
import { PouchDocDb } from './pouch-doc-db.js';
import { Shards } from './shards.js';

export type ThreadRequest =
  | { id: number; op: 'open' | 'close' | 'destroy' | 'exists'; path: string }
  | { id: number; op: 'closeAll' }
  | { id: number; op: 'call'; path: string; method: keyof DocDb; args: unknown[] };

export type ThreadReply = { id: number; value?: unknown } | { id: number; error: { message: string; status?: number } };

const port = parentPort;
if (!port) throw new Error('pouch-thread runs as a worker thread');

const open = new Map<string, Promise<PouchDocDb>>();
const shards = new Shards((workerData as { dataDir: string }).dataDir);

async function opened(path: string): Promise<PouchDocDb> {
  const db = open.get(path);
  if (!db) throw new Error(`database ${path} is not open in this storage thread`);
  return db;
}

async function handle(req: ThreadRequest): Promise<unknown> {
  switch (req.op) {
    case 'open': {
      let db = open.get(req.path);
      if (!db) {
        db = shards.pouch(req.path).then((pouch) => new PouchDocDb(pouch));
        open.set(req.path, db);
        db.catch(() => open.delete(req.path));
      }
      await db;
      return undefined;
    }
    case 'close': {
      const db = open.get(req.path);
      open.delete(req.path);
      await (await db?.catch(() => undefined))?.pouch.close();
      return undefined;
    }
    case 'closeAll': {
      // LevelDB's lock is held until close: a gateway started again in this process reopens them.
      const dbs = await Promise.allSettled(open.values());
      open.clear();
      await Promise.all(dbs.map((db) => (db.status === 'fulfilled' ? db.value.pouch.close() : undefined)));
      await shards.close();
      return undefined;
    }
    case 'destroy':
      await shards.destroy(req.path);
      return undefined;
    case 'exists':
      return shards.exists(req.path);
    case 'call': {
      const db = await opened(req.path);
      return (db[req.method] as (...a: unknown[]) => Promise<unknown>).apply(db, req.args);
    }
  }
}

port.on('message', (req: ThreadRequest) => {
  handle(req).then(
    (value) => port.postMessage({ id: req.id, value } satisfies ThreadReply),
    (e: unknown) => {
      const err = e as { message?: string; status?: number };
      const error: { message: string; status?: number } = { message: err?.message ?? String(e) };
      if (typeof err?.status === 'number') error.status = err.status;
      port.postMessage({ id: req.id, error } satisfies ThreadReply);
    },
  );
});
