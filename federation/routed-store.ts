// The Store the HTTP layer sees when users live on many nodes: every call goes to the store of
// the node that holds the uid (federation/node-stores.ts).
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
import type { NodeStores } from './node-stores.js';

export class RoutedStore implements Store {
  constructor(private readonly nodes: NodeStores) {}

  private async on(uid: string): Promise<Store> {
    return this.nodes.forUid(uid);
  }

  async info(uid: string, pre: Preconditions): Promise<StorageInfo> {
    return (await this.on(uid)).info(uid, pre);
  }
  async usage(uid: string, pre: Preconditions): Promise<UsageInfo & { lastModified: number }> {
    return (await this.on(uid)).usage(uid, pre);
  }
  async list(uid: string, collection: string, query: ListQuery, pre: Preconditions): Promise<ListResult> {
    return (await this.on(uid)).list(uid, collection, query, pre);
  }
  async get(uid: string, collection: string, id: string, pre: Preconditions): Promise<Bso> {
    return (await this.on(uid)).get(uid, collection, id, pre);
  }
  async put(uid: string, collection: string, record: BsoInput, pre: Preconditions): Promise<WriteResult> {
    return (await this.on(uid)).put(uid, collection, record, pre);
  }
  async post(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<WriteResult> {
    return (await this.on(uid)).post(uid, collection, input, pre);
  }
  async openBatch(uid: string, collection: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted> {
    return (await this.on(uid)).openBatch(uid, collection, input, pre);
  }
  async appendBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<BatchAccepted> {
    return (await this.on(uid)).appendBatch(uid, collection, batch, input, pre);
  }
  async commitBatch(uid: string, collection: string, batch: string, input: PostInput, pre: Preconditions): Promise<WriteResult> {
    return (await this.on(uid)).commitBatch(uid, collection, batch, input, pre);
  }
  async deleteItem(uid: string, collection: string, id: string, pre: Preconditions): Promise<number> {
    return (await this.on(uid)).deleteItem(uid, collection, id, pre);
  }
  async deleteItems(uid: string, collection: string, ids: string[], pre: Preconditions): Promise<number> {
    return (await this.on(uid)).deleteItems(uid, collection, ids, pre);
  }
  async deleteCollection(uid: string, collection: string, pre: Preconditions): Promise<number> {
    return (await this.on(uid)).deleteCollection(uid, collection, pre);
  }
  async deleteAll(uid: string, pre: Preconditions): Promise<number> {
    return (await this.on(uid)).deleteAll(uid, pre);
  }
  /** __heartbeat__ speaks for this gateway's own store; node health is the monitor's job. */
  check(): Promise<void> {
    return this.nodes.defaultStore.check();
  }
  close(): Promise<void> {
    return this.nodes.close();
  }
}
