// Storage routing: each uid's requests go to the store of the node the registry placed it on,
// on whichever gateway receives them. The default node is the store the configuration selects
// (embedded, or COUCH_URL); other nodes get a Couch store each, opened on first use with their
// credentials decrypted from the registry. Uids the registry does not know (tokens of another
// tokenserver, `syncgate token`) live on the default node.
import { SyncError } from '../common/errors.js';
import type { Config } from '../server/config.js';
import { CouchBackend } from '../storage/couch/couch-backend.js';
import { CouchClient } from '../storage/couch/couch-client.js';
import { createStore } from '../storage/create-store.js';
import type { SyncStore } from '../storage/engine/sync-store.js';
import { joinCouchUrl, type NodeSecrets } from './node-secrets.js';
import { DEFAULT_NODE, type NodeDoc, type Registry } from './registry.js';

interface Opened {
  /** The node document the store was opened for: a new URL or password opens a new one. */
  rev: string | undefined;
  store: Promise<SyncStore>;
}

export class NodeStores {
  private readonly opened = new Map<string, Opened>();

  constructor(
    private readonly registry: Registry,
    readonly defaultStore: SyncStore,
    private readonly secrets: NodeSecrets,
    private readonly config: Config,
  ) {}

  async forUid(uid: string): Promise<SyncStore> {
    const placed = await this.registry.placement(Number(uid));
    const name = placed?.node ?? DEFAULT_NODE;
    if (name === DEFAULT_NODE) return this.defaultStore;
    const node = this.registry.node(name);
    if (!node) throw new SyncError('unavailable', `node ${name} is not in the registry`);
    if (node.downed) throw new SyncError('unavailable', `node ${name} is down`);
    return this.forNode(node);
  }

  private forNode(node: NodeDoc): Promise<SyncStore> {
    const hit = this.opened.get(node.name);
    if (hit && hit.rev === node._rev) return hit.store;
    if (hit) void hit.store.then((s) => s.close()).catch(() => undefined);
    const store = (async () => {
      if (!node.couchUrl) throw new SyncError('unavailable', `node ${node.name} has no URL`);
      const creds = node.credentials ? await this.secrets.open(node.credentials) : undefined;
      const client = new CouchClient(joinCouchUrl(node.couchUrl, creds), { timeoutMs: this.config.couchTimeoutMs, readRetries: 2 });
      return createStore(this.config, new CouchBackend(client));
    })();
    this.opened.set(node.name, { rev: node._rev, store });
    store.catch(() => this.opened.delete(node.name));
    return store;
  }

  /** Every open store, for background work (expiry purge). */
  async all(): Promise<SyncStore[]> {
    const others = await Promise.all([...this.opened.values()].map((o) => o.store.catch(() => undefined)));
    return [this.defaultStore, ...others.filter((s): s is SyncStore => s !== undefined)];
  }

  async destroy(uid: string, node: string): Promise<void> {
    if (node === DEFAULT_NODE) return this.defaultStore.destroy(uid);
    const doc = this.registry.node(node);
    if (!doc) return; // the node is gone, and its databases with it
    await (await this.forNode(doc)).destroy(uid);
  }

  async close(): Promise<void> {
    for (const o of this.opened.values()) await o.store.then((s) => s.close()).catch(() => undefined);
    this.opened.clear();
  }
}
