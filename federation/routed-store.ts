// The Store the HTTP layer sees when users live on many nodes: every call goes to the store of
// the node that serves the uid (federation/node-stores.ts). After an acknowledged write the
// other copy is brought up to date: scheduled (asynchronous nodes) or before the answer
// (synchronous nodes). A node that cannot be reached costs the client a 503 with Retry-After,
// and tells the health monitor.
import { SyncError } from '../common/errors.js';
import { couchUnavailable } from '../storage/couch/couch-client.js';
import type {
  BatchAccepted,
  Bso,
  BsoInput,
  ListQuery,
  ListResult,
  PostInput,
  Preconditions,
  StorageInfo,
  Store,
  UsageInfo,
  WriteResult,
} from '../storage/store.js';

import type { Replicator } from './replicator.js';
import { FAILOVER_RETRY_AFTER, MOVE_RETRY_AFTER, type NodeStores, type Route } from './node-stores.js';

export interface RoutedStoreHooks {
  replicator?: Replicator;
  /** A request to the node failed as if it were dead (unreachable, timed out, 5xx). */
  nodeFailed?: (node: string) => void;
}


export class RoutedStore implements Store {
  constructor(
    private readonly nodes: NodeStores,
    private readonly hooks: RoutedStoreHooks = {},
  ) {}

  /**
   * Users this process has sent a replication for (or seen). A gateway that dies loses its
   * queue of debounced replications; the next gateway to see each of those users replicates
   * them once, so the window for loss ends at the user's next request of any kind.
   */
  private readonly touched = new Set<string>();

  /** Whether this is the first time this process sees the user. */
  private touch(uid: string): boolean {
    if (this.touched.has(uid)) return false;
    this.touched.add(uid);
    if (this.touched.size > 100_000) this.touched.delete(this.touched.values().next().value as string);
    return true;
  }

  private firstTouch(uid: string, route: Route): void {
    if (route.other !== undefined && this.touch(uid)) this.hooks.replicator?.schedule(uid, route.node, route.other);
  }

  private async read<T>(uid: string, fn: (s: Store) => Promise<T>): Promise<T> {
    const route = await this.nodes.route(uid);
    this.firstTouch(uid, route);
    try {
      return await fn(route.store);
    } catch (e) {
      throw this.failure(route, e);
    }
  }

  private async write<T>(uid: string, fn: (s: Store) => Promise<T>): Promise<T> {
    const route = await this.nodes.route(uid);
    let result: T;
    try {
      result = await fn(route.store);
    } catch (e) {
      throw this.failure(route, e);
    }
    if (!(await this.nodes.stillRoutes(uid, route))) {
      throw new SyncError('unavailable', `uid ${uid} moved during the write`, { retryAfter: MOVE_RETRY_AFTER });
    }
    this.touch(uid);
    const { replicator } = this.hooks;
    if (replicator && route.other !== undefined) {
      if (route.synchronous) {
        try {
          await replicator.now(uid, route.node, route.other);
        } catch (e) {
          // Written on one node only: not acknowledged. Sync writes are idempotent to retry.
          throw new SyncError('unavailable', `replica ${route.other} did not take the write`, { retryAfter: FAILOVER_RETRY_AFTER, cause: e });
        }
      } else {
        replicator.schedule(uid, route.node, route.other);
      }
    }
    return result;
  }

  private failure(route: Route, e: unknown): unknown {
    if (!couchUnavailable(e)) return e;
    this.hooks.nodeFailed?.(route.node);
    return new SyncError('unavailable', `node ${route.node} did not answer`, { retryAfter: FAILOVER_RETRY_AFTER, cause: e });
  }

  info(uid: string, pre: Preconditions): Promise<StorageInfo> {
    return this.read(uid, (s) => s.info(uid, pre));
  }
  usage(uid: string, pre: Preconditions): Promise<UsageInfo & { lastModified: number }> {
    return this.read(uid, (s) => s.usage(uid, pre));
  }
  list(uid: string, collection: string, query: ListQuery, pre: Preconditions): Promise<ListResult> {
    return this.read(uid, (s) => s.list(uid, collection, query, pre));
  }
  get(uid: string, collection: string, id: string, pre: Preconditions): Promise<Bso> {
    return this.read(uid, (s) => s.get(uid, collection, id, pre));
  }
  put(uid: string, collection: string, record: BsoInput, pre: Preconditions): Promise<WriteResult> {
    return this.write(uid, (s) => s.put(uid, collection, record, pre));
  }
  post(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<WriteResult> {
    return this.write(uid, (s) => s.post(uid, collection, input, pre));
  }
  openBatch(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted> {
    return this.write(uid, (s) => s.openBatch(uid, collection, input, pre));
  }
  appendBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted> {
    return this.write(uid, (s) => s.appendBatch(uid, collection, batch, input, pre));
  }
  commitBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<WriteResult> {
    return this.write(uid, (s) => s.commitBatch(uid, collection, batch, input, pre));
  }
  deleteItem(uid: string, collection: string, id: string, pre: Preconditions): Promise<number> {
    return this.write(uid, (s) => s.deleteItem(uid, collection, id, pre));
  }
  deleteItems(uid: string, collection: string, ids: string[], pre: Preconditions): Promise<number> {
    return this.write(uid, (s) => s.deleteItems(uid, collection, ids, pre));
  }
  deleteCollection(uid: string, collection: string, pre: Preconditions): Promise<number> {
    return this.write(uid, (s) => s.deleteCollection(uid, collection, pre));
  }
  deleteAll(uid: string, pre: Preconditions): Promise<number> {
    return this.write(uid, (s) => s.deleteAll(uid, pre));
  }
  /** __heartbeat__ speaks for this gateway's own store; node health is the monitor's job. */
  check(): Promise<void> {
    return this.nodes.defaultStore.check();
  }
  close(): Promise<void> {
    return this.nodes.close();
  }
}
