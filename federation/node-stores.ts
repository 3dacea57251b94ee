// Storage routing: each uid's requests go to the store of the node that serves it, on whichever
// gateway receives them. The default node is the store the configuration selects (embedded, or
// COUCH_URL); other nodes get a Couch store each, opened on first use with their credentials
// decrypted from the registry. Uids the registry does not know (tokens of another tokenserver,
// `syncgate token`) live on the default node.
//
// A user is served by their primary node while it is servable, by their replica while the
// primary is out (failed, downed, or returning and not yet merged back): that is failover.
import type { Metrics } from '../common/metrics.js';
import { SyncError } from '../common/errors.js';
import type { Config } from '../server/config.js';
import { CouchBackend } from '../storage/couch/couch-backend.js';
import { CouchClient } from '../storage/couch/couch-client.js';
import { createStore } from '../storage/create-store.js';
import type { SyncStore } from '../storage/engine/sync-store.js';
import { joinCouchUrl, type NodeSecrets } from './node-secrets.js';
import { DEFAULT_NODE, servable, type NodeDoc, type Registry } from './registry.js';

/** How long a client should wait when neither copy of its storage can be served. */
export const FAILOVER_RETRY_AFTER = 5;
/** How long a client should wait while its storage is switched to another node (a move). */
export const MOVE_RETRY_AFTER = 2;

/** A Couch node as this gateway reaches it. */
export interface NodeEndpoint {
  name: string;
  /** Couch URL with credentials: never logged, never shown. */
  url: string;
  client: CouchClient;
  backend: CouchBackend;
}

interface Opened {
  /** What the store was opened with: a new URL or password opens a new one. */
  key: string;
  endpoint: Promise<NodeEndpoint>;
  store: Promise<SyncStore>;
}

/** Where one request goes: the serving node and the node holding the other copy. */
export interface Route {
  store: SyncStore;
  node: string;
  /** The other copy's node, when the user has one. */
  other: string | undefined;
  /** Writes are acknowledged only once the other copy has them. */
  synchronous: boolean;
  /** The user's primary when the route was made. */
  primary: string;
}

export class NodeStores {
  private readonly opened = new Map<string, Opened>();
  /** Nodes this gateway's health monitor holds to be dead before the registry says so. */
  isTripped: (node: string) => boolean = () => false;

  constructor(
    private readonly registry: Registry,
    readonly defaultStore: SyncStore,
    private readonly secrets: NodeSecrets,
    private readonly config: Config,
    private readonly metrics?: Metrics,
  ) {}

  /** Whether this gateway may send requests for users to the node now. */
  serves(name: string | undefined): boolean {
    if (name === undefined) return false;
    if (name === DEFAULT_NODE) return true;
    return servable(this.registry.node(name)) && !this.isTripped(name);
  }

  /** Whether replication may write to the node: alive, though perhaps not yet merged back. */
  reachable(name: string): boolean {
    if (name === DEFAULT_NODE) return true;
    const n = this.registry.node(name);
    return n !== undefined && !n.downed && n.failedAt === undefined && !this.isTripped(name);
  }

  /** Whether the node is a Couch this gateway can replicate to and from (the default node only on COUCH_URL). */
  replicable(name: string): boolean {
    return name === DEFAULT_NODE ? this.config.couchUrl !== undefined : this.registry.node(name)?.couchUrl !== undefined;
  }

  /** Out, or back and not yet merged: failback, not replication, carries its writes (federation/failback.ts). */
  mergedByFailback(name: string): boolean {
    return name !== DEFAULT_NODE && !servable(this.registry.node(name));
  }

  async route(uid: string): Promise<Route> {
    const placed = await this.registry.placement(Number(uid));
    // Its account was deleted: the device is told so by a 401, and then by the accounts server.
    if (placed?.revokedAt !== undefined) throw new SyncError('unauthorized', `the account of uid ${uid} was deleted`);
    const primary = placed?.node ?? DEFAULT_NODE;
    // A replica is kept only between Couch nodes (the embedded store cannot be replicated to).
    const replica = primary === DEFAULT_NODE && !this.config.couchUrl ? undefined : placed?.replica;
    // A node just added by another gateway may not have reached this one's feed yet: never take
    // it for one that is out (its users would be served from, and written to, their replicas).
    for (const n of [primary, replica]) if (n !== undefined && n !== DEFAULT_NODE && !this.registry.node(n)) await this.registry.freshNode(n);
    let node = primary;
    let other = replica;
    if (placed?.move?.switchingSince !== undefined) {
      throw new SyncError('unavailable', `uid ${uid} is moving to node ${placed.move.to}`, { retryAfter: MOVE_RETRY_AFTER });
    }
    if (primary !== DEFAULT_NODE && this.registry.node(primary)?.switchingSince !== undefined) {
      throw new SyncError('unavailable', `node ${primary} is taking its users back`, { retryAfter: FAILOVER_RETRY_AFTER });
    }
    if (!this.serves(primary)) {
      if (!replica || !this.serves(replica)) {
        throw new SyncError('unavailable', `node ${primary} is out and uid ${uid} has no servable replica`, { retryAfter: FAILOVER_RETRY_AFTER });
      }
      node = replica;
      other = primary;
    }
    const doc = this.registry.node(node);
    const synchronous = other !== undefined && (doc?.synchronous ?? false);
    const store = node === DEFAULT_NODE ? this.defaultStore : await this.open(node).store;
    return { store, node, other, synchronous, primary };
  }

  /**
   * Whether a write that just succeeded on route.node may be acknowledged: the uid is not in a
   * move's switch, and its primary is the one the route was made for. A write that lands on the
   * source copy after a move's last copy would be lost with it: it is answered 503 instead, and
   * the client sends it again, to the new primary.
   */
  async stillRoutes(uid: string, route: Route): Promise<boolean> {
    const placed = await this.registry.placement(Number(uid));
    return placed?.move?.switchingSince === undefined && (placed?.node ?? DEFAULT_NODE) === route.primary;
  }

  /** The store of a named node (failback works on a node before it serves again). */
  storeOf(name: string): Promise<SyncStore> {
    return name === DEFAULT_NODE ? Promise.resolve(this.defaultStore) : this.open(name).store;
  }

  /** How this gateway reaches the node's Couch; undefined for an embedded default node. */
  async endpoint(name: string): Promise<NodeEndpoint | undefined> {
    if (name === DEFAULT_NODE) {
      if (!this.config.couchUrl) return undefined;
      this.defaultEndpoint ??= (() => {
        const client = this.newClient(this.config.couchUrl as string, name);
        return { name, url: this.config.couchUrl as string, client, backend: new CouchBackend(client) };
      })();
      return this.defaultEndpoint;
    }
    return this.open(name).endpoint;
  }
  private defaultEndpoint: NodeEndpoint | undefined;

  private newClient(url: string, node: string): CouchClient {
    return new CouchClient(url, { timeoutMs: this.config.couchTimeoutMs, readRetries: 2, ...(this.metrics ? { metrics: { metrics: this.metrics, node } } : {}) });
  }

  private open(name: string): Opened {
    const node: NodeDoc | undefined = this.registry.node(name);
    if (!node) throw new SyncError('unavailable', `node ${name} is not in the registry`, { retryAfter: FAILOVER_RETRY_AFTER });
    const key = `${node.couchUrl ?? ''}\n${node.credentials ?? ''}`;
    const hit = this.opened.get(name);
    if (hit && hit.key === key) return hit;
    if (hit) void hit.store.then((s) => s.close()).catch(() => undefined);
    const endpoint = (async (): Promise<NodeEndpoint> => {
      if (!node.couchUrl) throw new SyncError('unavailable', `node ${name} has no URL`);
      const creds = node.credentials ? await this.secrets.open(node.credentials) : undefined;
      const url = joinCouchUrl(node.couchUrl, creds);
      const client = this.newClient(url, name);
      return { name, url, client, backend: new CouchBackend(client) };
    })();
    const store = endpoint.then((e) => createStore(this.config, e.backend, name));
    const opened: Opened = { key, endpoint, store };
    this.opened.set(name, opened);
    store.catch(() => {
      if (this.opened.get(name) === opened) this.opened.delete(name);
    });
    return opened;
  }

  /** Every open store, for background work (expiry purge). */
  async all(): Promise<SyncStore[]> {
    const others = await Promise.all([...this.opened.values()].map((o) => o.store.catch(() => undefined)));
    return [this.defaultStore, ...others.filter((s): s is SyncStore => s !== undefined)];
  }

  async destroy(uid: string, node: string): Promise<void> {
    if (node === DEFAULT_NODE) return this.defaultStore.destroy(uid);
    if (!this.registry.node(node)) return; // the node is gone, and its databases with it
    await (await this.open(node).store).destroy(uid);
  }

  async close(): Promise<void> {
    for (const o of this.opened.values()) await o.store.then((s) => s.close()).catch(() => undefined);
    this.opened.clear();
  }
}
