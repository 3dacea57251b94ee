// The embedded store's storage threads, seen from the gateway's thread: each user database
// lives in one thread (the one of its shard, so LevelDB's one-opener rule holds), and a
// ThreadDocDb forwards the engine's document operations to it. Documents cross by structured
// clone; errors come back with their message and status.
import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Changes, Doc, DocDb, BulkResult, Leaf } from '../doc-db.js';
import type { ThreadReply, ThreadRequest } from './pouch-thread.js';
import { shardOf } from './shards.js';

// A storage thread keeps little alive (its databases' handles and the documents in flight), but
// V8 sizes a heap's growth by its limit: under the default limit (a quarter of the machine's
// memory) each storage thread's old space grew to 65-72 MB of mostly garbage under Mozilla's load
// mix; under 1 GB it grows by a smaller factor and stayed at 28-31 MB, with the same sessions/s.
// 1 GB is far above what a thread holds (a listing of every record of a large collection is a
// few tens of MB), so the limit itself is not expected to be reached.
const STORAGE_THREAD_OLD_SPACE_MB = 1024;

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type Body = ThreadRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

class StorageThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, Pending>();
  private next = 0;
  private failure: Error | undefined;

  constructor(dataDir: string) {
    this.worker = new Worker(new URL('./pouch-thread.js', import.meta.url), { workerData: { dataDir }, resourceLimits: { maxOldGenerationSizeMb: STORAGE_THREAD_OLD_SPACE_MB } });
    this.worker.on('message', (reply: ThreadReply) => {
      const p = this.waiting.get(reply.id);
      if (!p) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.worker.unref();
      if ('error' in reply) p.reject(Object.assign(new Error(reply.error.message), reply.error.status === undefined ? {} : { status: reply.error.status }));
      else p.resolve(reply.value);
    });
    // A thread that dies takes its databases' answers with it: everything waiting fails, and so
    // does everything asked later (the gateway's health check reports it).
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const p of this.waiting.values()) p.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`storage thread exited with ${code}`)));
    // Idle, the thread does not keep the process alive; with an answer awaited it does (a
    // short command would otherwise exit before its storage answered).
    this.worker.unref();
  }

  request<T>(body: Body): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...body, id } as ThreadRequest);
    });
  }

  get alive(): Error | undefined {
    return this.failure;
  }

  async terminate(): Promise<void> {
    if (!this.failure) await this.request({ op: 'closeAll' });
    await this.worker.terminate();
  }
}

/** A user database in a storage thread. */
export class ThreadDocDb implements DocDb {
  constructor(
    private readonly thread: StorageThread,
    readonly path: string,
  ) {}

  private call<T>(method: keyof DocDb, ...args: unknown[]): Promise<T> {
    return this.thread.request<T>({ op: 'call', path: this.path, method, args });
  }

  get<T extends Doc>(id: string): Promise<T | undefined> {
    return this.call('get', id);
  }
  getMany<T extends Doc>(ids: string[]): Promise<Map<string, T>> {
    return this.call('getMany', ids);
  }
  put(doc: Doc): Promise<string | 'conflict'> {
    return this.call('put', doc);
  }
  bulk(docs: Doc[]): Promise<BulkResult[]> {
    return this.call('bulk', docs);
  }
  range<T extends Doc>(startId: string, endId: string, limit?: number, descending?: boolean): Promise<T[]> {
    if (descending) return this.call('range', startId, endId, limit, true);
    return limit === undefined ? this.call('range', startId, endId) : this.call('range', startId, endId, limit);
  }
  changes<T extends Doc>(since: string | number): Promise<Changes<T>> {
    return this.call('changes', since);
  }
  snapshot<T extends Doc>(startId: string, endId: string): Promise<Changes<T>> {
    return this.call('snapshot', startId, endId);
  }
  revisions<T extends Doc>(id: string, revs: string[]): Promise<T[]> {
    return this.call('revisions', id, revs);
  }
  leaves<T extends Doc>(id: string): Promise<Leaf<T>[]> {
    return this.call('leaves', id);
  }
}

/** The storage threads; `count` 0 means as many as the machine has cores. */
export class ThreadPool {
  private readonly threads: StorageThread[];

  constructor(count: number, dataDir: string) {
    const n = count > 0 ? count : Math.max(1, cpus().length);
    this.threads = Array.from({ length: n }, () => new StorageThread(dataDir));
  }

  /** A shard is opened by one thread: the user's shard chooses the thread. */
  private threadOf(path: string): StorageThread {
    return this.threads[shardOf(path) % this.threads.length] as StorageThread;
  }

  async open(path: string): Promise<ThreadDocDb> {
    const thread = this.threadOf(path);
    await thread.request({ op: 'open', path });
    return new ThreadDocDb(thread, path);
  }

  close(db: ThreadDocDb): Promise<void> {
    return this.threadOf(db.path).request({ op: 'close', path: db.path });
  }

  destroy(path: string): Promise<void> {
    return this.threadOf(path).request({ op: 'destroy', path });
  }

  exists(path: string): Promise<boolean> {
    return this.threadOf(path).request({ op: 'exists', path });
  }

  /** The first failure of a thread, if one died. */
  failure(): Error | undefined {
    for (const t of this.threads) if (t.alive) return t.alive;
    return undefined;
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate()));
  }
}
