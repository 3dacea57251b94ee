// The registry: accounts, their uids and the nodes that hold them, as documents in one
// database every gateway shares (embedded PouchDB, or a database on the Couch of COUCH_URL).
//
//   user:<email>  every uid the account ever had (the rows of Mozilla's users table); the
//                 user model's decisions are stored with a compare-and-swap on its _rev, so
//                 two gateways deciding at once cannot hand out two uids for one account
//   uid:<uid>     claims a uid for one account (created, never updated: uniqueness across
//                 gateways without a shared counter) and says which node holds its storage
//   node:<name>   a node that can hold user databases
//   purge:<when>:<uid>  an old uid whose storage is deleted once the grace period is over
//                 (ids sort by time, so the due ones are one range read)
//   event:<when>:<random>  a failover, failback, move or evacuation, for the dashboard
//                 (federation/event-log.ts)
//
// Token requests read user documents from the database (one read per client per hour). Nodes
// and uid placements are cached in memory and kept fresh from the _changes feed, since storage
// routing needs them on every request.
import { randomInt } from 'node:crypto';
import { TokenError } from '../common/errors.js';
import { failpointPause } from '../common/failpoint.js';
import { RecencyMap } from '../common/recency-map.js';
import { couchUnavailable } from '../storage/couch/couch-client.js';
import type { CouchInfo } from '../storage/couch/couch-backend.js';
import type { Doc, DocDb } from '../storage/doc-db.js';
import { EventLog, type EventDoc, type RegistryEvent } from './event-log.js';
import { place, type Placement } from './placement.js';
import { applyDecision, currentRow, decide, type Login, type UserRow } from './user-model.js';

export interface UserDoc extends Doc {
  type: 'user';
  email: string;
  rows: UserRow[];
}

export interface UidDoc extends Doc {
  type: 'uid';
  email: string;
  node: string;
  /** The node that keeps a replica of this uid's database. */
  replica?: string;
  createdAt: number;
  /** Set once the storage of this (replaced) uid was deleted and uncounted. */
  purgedAt?: number;
  /** The account was deleted: storage refuses this uid's tokens, whatever their expiry. */
  revokedAt?: number;
  /** A move of this uid's storage to other nodes, in progress (federation/user-move.ts). */
  move?: MoveRecord;
  /** How the last move ended. */
  lastMove?: { to: string; outcome: 'moved' | 'rolled back'; at: number; reason?: string; switchMs?: number };
}

export interface MoveRecord {
  /** The new primary, and the new replica (none: the user has no other copy). */
  to: string;
  replica?: string;
  /** Where the user was when the move was asked for. */
  from: string;
  fromReplica?: string;
  requestedAt: number;
  /** The gateway running it, until when (a lease: another gateway takes over after it). */
  owner?: string;
  until?: number;
  /** The switch: since then the user's requests are refused (503) and the source copy retired. */
  switchingSince?: number;
  /** Undoing it (why): the switch is cleared at once, the record goes once nothing is left to undo. */
  rollback?: string;
  /** The source copy may be marked retired: unmarked before the record goes. */
  unmark?: boolean;
  /** Attempts that failed (a move that keeps failing is rolled back). */
  failures?: number;
}

export interface OperatorDoc extends Doc {
  type: 'operator';
  name: string;
  /** Writes to this operator's nodes are acknowledged only once the replica has them. */
  synchronous: boolean;
  createdAt: number;
}

export interface NodeDoc extends Doc {
  type: 'node';
  name: string;
  /** Public base URL of the gateway that serves this node; undefined: whichever gateway answers. */
  url?: string;
  /** The operator running it; the default node (this gateway's own store) has none. */
  operator?: string;
  /** Couch URL without credentials; undefined for the default node. */
  couchUrl?: string;
  /** The Couch user and password, as a JWE (federation/node-secrets.ts). */
  credentials?: string;
  /** What the node said of itself when it was added (version, features). */
  couch?: CouchInfo;
  capacity: number;
  weight?: number;
  /** Users placed there (counted at placement, so no scan is needed to place or remove). */
  assigned?: number;
  /** Manual override: takes no new users and is not served (`node down`). */
  downed: boolean;
  /** Takes no new users; its users stay (`node drain`). */
  draining?: boolean;
  /** Its users are being moved off it (`node drain --move`, `operator evacuate`): federation/evacuation.ts. */
  evacuating?: Evacuation;
  /**
   * A person's own Couch: it holds only this account's storage (registry email), is never
   * chosen for anyone else, and is removed from the registry once its user has moved off.
   */
  owner?: string;
  removeWhenEmpty?: boolean;
  /** How the last evacuation went, once it is over. */
  evacuated?: { since: number; total: number; endedAt: number };
  synchronous?: boolean;
  createdAt?: number;
  /** Set by a gateway's health monitor when the node stopped answering (federation/node-health.ts). */
  failedAt?: number;
  /**
   * The node was out (failed or downed) while its users were served from their other copy:
   * it is served again only after failback merged every such user (federation/failback.ts).
   */
  needsMerge?: boolean;
  /** The gateway running the failback, until when. */
  merging?: { owner: string; until: number };
  /**
   * Failback's last step: since when the node's users are refused (503) while every gateway
   * learns that their primary serves again and the writes of that last moment are merged.
   */
  switchingSince?: number;
}

export interface Evacuation {
  since: number;
  /** User databases on the node when it began. */
  total: number;
  /** Only to nodes of other operators (`operator evacuate`). */
  otherOperators?: boolean;
  /** Where the current pass over the uids is (a uid document id); passes go on until one finds nobody. */
  cursor?: string;
  /** Users found on the node in the current pass. */
  found?: number;
}

/** Whether requests may go to the node: not downed, not failed, nothing left to merge back. */
export const servable = (n: NodeDoc | undefined): n is NodeDoc => n !== undefined && !n.downed && n.failedAt === undefined && !n.needsMerge;

export interface PurgeDoc extends Doc {
  type: 'purge';
  uid: number;
  email: string;
  node: string;
  notBefore: number;
  /**
   * Only the copy on `node`, left behind by a move (or a move rolled back): deleted unless the
   * uid is placed there again, or a move is bringing it there, by then.
   */
  copy?: boolean;
  /** When the key change that queued it began (absent in entries of older versions). */
  queuedAt?: number;
}

/**
 * How long an entry whose row is not (yet) replaced is kept: the swap that queued it may still
 * be in flight. Only after that is the row's being unreplaced proof that the swap lost.
 */
const SWAP_SETTLE_MS = 60_000;

export const DEFAULT_NODE = 'default';
const MAX_UID = 2 ** 31 - 1;
const UID_CACHE = 100_000;

const userId = (email: string): string => `user:${email}`;
const uidId = (uid: number): string => `uid:${uid}`;

export interface RegistryOptions {
  allowNewUsers: boolean;
  /** How long an old uid's storage is kept after it was replaced. */
  purgeAfterMs: number;
  /** Poll the _changes feed (other gateways write too); off for the single embedded gateway. */
  followChanges: boolean;
  followIntervalMs?: number;
  /** The feed could not be read (`err`) or answers again (undefined): logged once per change. */
  onFollowState?: (err: unknown) => void;
  now?: () => number;
}

export class Registry {
  private readonly nodes = new Map<string, NodeDoc>();
  /** uid placements; null: not in the registry (tokens of another tokenserver, `syncgate token`). */
  private readonly uids = new RecencyMap<number, UidDoc | null>();
  /**
   * Accounts as last read or written here, kept fresh by the feed like placements: while the
   * registry cannot be read, a token request that changes nothing is answered from them.
   */
  private readonly users = new Map<string, UserDoc>();
  private followFailing = false;
  private since: string | number = 0;
  private follower: NodeJS.Timeout | undefined;
  private following: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly events: EventLog;

  constructor(
    readonly db: DocDb,
    private readonly opts: RegistryOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.events = new EventLog(db, this.now);
  }

  async start(): Promise<void> {
    await this.ensureDefaultNode();
    // The feed position first, then the nodes: a change in between is seen twice, never missed.
    this.since = (await this.db.changes<Doc>('now')).lastSeq;
    for (const node of await this.db.range<NodeDoc>('node:', 'node:\ufff0')) this.observe(node);
    if (this.opts.followChanges) {
      // A registry that does not answer costs only what needs it: the caches keep serving and
      // the feed is read again from where it stopped, so nothing is missed once it is back.
      this.follower = setInterval(() => {
        this.following ??= this.follow()
          .then(
            () => this.followState(undefined),
            (err: unknown) => this.followState(err),
          )
          .finally(() => (this.following = undefined));
      }, this.opts.followIntervalMs ?? 1000);
      this.follower.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.follower);
    await this.following?.catch(() => undefined);
  }

  /** One read of the _changes feed: what other gateways changed since the last one. */
  async follow(): Promise<void> {
    const changes = await this.db.changes<Doc>(this.since);
    for (const doc of changes.docs) this.observe(doc);
    this.since = changes.lastSeq;
  }

  private followState(err: unknown): void {
    if ((err !== undefined) === this.followFailing) return;
    this.followFailing = err !== undefined;
    this.opts.onFollowState?.(err);
  }

  private observe(doc: Doc): void {
    if (doc._id.startsWith('node:')) {
      const name = doc._id.slice(5);
      if (doc._deleted) this.nodes.delete(name);
      else this.nodes.set(name, doc as NodeDoc);
    } else if (doc._id.startsWith('uid:')) {
      const uid = Number(doc._id.slice(4));
      if (doc._deleted) this.uids.delete(uid);
      else this.uids.replace(uid, doc as UidDoc);
    } else if (doc._id.startsWith('user:')) {
      const email = doc._id.slice(5);
      if (doc._deleted) this.users.delete(email);
      else if (this.users.has(email)) this.users.set(email, doc as UserDoc);
    }
  }

  private remember(doc: UserDoc): void {
    this.users.delete(doc.email);
    this.users.set(doc.email, doc);
    if (this.users.size > UID_CACHE) this.users.delete(this.users.keys().next().value as string);
  }

  private async ensureDefaultNode(): Promise<void> {
    if (await this.db.get<NodeDoc>(`node:${DEFAULT_NODE}`)) return;
    const node: NodeDoc = { _id: `node:${DEFAULT_NODE}`, type: 'node', name: DEFAULT_NODE, capacity: 100_000_000, downed: false };
    await this.db.put(node); // a conflict means another gateway created it
  }

  node(name: string): NodeDoc | undefined {
    return this.nodes.get(name);
  }

  /**
   * A node this gateway has not seen yet, read from the registry: a placement names a node that
   * another gateway added less than a feed interval ago. Undefined: it is not in the registry.
   */
  async freshNode(name: string): Promise<NodeDoc | undefined> {
    const known = this.nodes.get(name);
    if (known) return known;
    const doc = await this.db.get<NodeDoc>(`node:${name}`);
    if (doc) this.observe(doc);
    return doc;
  }

  /** Where a uid's storage lives (cached, also when absent; the changes feed keeps it fresh). */
  async placement(uid: number): Promise<UidDoc | undefined> {
    const hit = this.uids.get(uid);
    if (hit !== undefined) return hit ?? undefined;
    const doc = await this.db.get<UidDoc>(uidId(uid));
    this.uids.set(uid, doc ?? null);
    if (this.uids.size > UID_CACHE) this.uids.delete(this.uids.keys().next().value as number);
    return doc;
  }

  /**
   * Changes one node document by compare-and-swap; `change` returns undefined to leave it as
   * it is. Returns the document as stored afterwards (undefined: no such node).
   */
  updateNode(name: string, change: (n: NodeDoc) => NodeDoc | undefined): Promise<NodeDoc | undefined> {
    return this.update(`node:${name}`, change);
  }

  /** One registry document changed by compare-and-swap, and seen here at once. */
  private async update<T extends Doc>(id: string, change: (doc: T) => T | undefined): Promise<T | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await this.db.get<T>(id);
      if (!doc) return undefined;
      const next = change(structuredClone(doc));
      if (!next) return doc;
      const rev = await this.db.put(next);
      if (rev !== 'conflict') {
        next._rev = rev;
        this.observe(next);
        return next;
      }
    }
    throw new Error(`${id}: registry contention`);
  }

  /** Drops a node document (one that holds no user database any more). */
  async removeNode(name: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await this.db.get<NodeDoc>(`node:${name}`);
      if (!doc) return;
      if ((await this.db.put({ ...doc, _deleted: true })) !== 'conflict') {
        this.nodes.delete(name);
        return;
      }
    }
  }

  /** Every uid whose primary or replica is the node, a page at a time (a scan: failback is rare). */
  async *uidsOn(node: string, pageSize = 500): AsyncGenerator<UidDoc> {
    let start = 'uid:';
    for (;;) {
      const page = await this.db.range<UidDoc>(start, 'uid:\ufff0', pageSize + 1);
      for (const doc of page.slice(0, pageSize)) {
        if (doc.purgedAt === undefined && (doc.node === node || doc.replica === node)) yield doc;
      }
      if (page.length <= pageSize) return;
      start = (page[pageSize] as UidDoc)._id;
    }
  }

  /** The uid's document as stored now (not cached). */
  async freshPlacement(uid: number): Promise<UidDoc | undefined> {
    const doc = await this.db.get<UidDoc>(uidId(uid));
    if (doc) this.observe(doc);
    return doc;
  }

  /**
   * Changes one uid document by compare-and-swap; `change` returns undefined to leave it as it
   * is. Returns the document as stored afterwards (undefined: no such uid).
   */
  updateUid(uid: number, change: (u: UidDoc) => UidDoc | undefined): Promise<UidDoc | undefined> {
    return this.update(uidId(uid), change);
  }

  /** Adds to (or, negative, takes from) the count of user databases on each named node. */
  countOn(nodes: Array<string | undefined>, delta: number): Promise<void> {
    return this.countNodes(nodes, delta);
  }

  /** Queues the deletion of the copy of uid on node once `notBefore` has passed. */
  async queueCopyPurge(uid: number, email: string, node: string, notBefore: number): Promise<void> {
    const doc: PurgeDoc = { _id: `purge:${String(notBefore).padStart(15, '0')}:${uid}:${node}`, type: 'purge', uid, email, node, notBefore, queuedAt: this.now(), copy: true };
    await this.db.put(doc); // a conflict: the same entry is queued already
  }

  /** Notes that uid has a move in progress: gateways find the moves to run or take over here. */
  async noteMove(uid: number): Promise<void> {
    await this.db.put({ _id: `move:${uid}`, type: 'move', uid, at: this.now() } as Doc); // a conflict: noted already
  }

  /** Drops the note; `olderThanMs`: only one written that long ago (a move may be asked for again). */
  async forgetMove(uid: number, olderThanMs = 0): Promise<void> {
    const doc = await this.db.get<Doc & { at?: number }>(`move:${uid}`);
    if (doc && this.now() - (doc.at ?? 0) >= olderThanMs) await this.db.put({ ...doc, _deleted: true });
  }

  /** The uids with a move in progress. */
  async moves(limit = 1000): Promise<number[]> {
    return (await this.db.range<Doc & { uid: number }>('move:', 'move:\ufff0', limit)).map((d) => d.uid);
  }

  /** Uid documents from `startId` on, in id order (a page of a pass over every uid). */
  uidPage(startId: string, limit: number): Promise<UidDoc[]> {
    return this.db.range<UidDoc>(startId, 'uid:\ufff0', limit);
  }

  /** Notes a failover, failback, move or evacuation in the log every gateway shares (best effort). */
  recordEvent(event: RegistryEvent): Promise<void> {
    return this.events.record(event);
  }

  /** The newest events of every gateway, newest first. */
  recentEvents(limit: number): Promise<EventDoc[]> {
    return this.events.recent(limit);
  }

  /** Every node, as last seen in the registry. */
  allNodes(): NodeDoc[] {
    return [...this.nodes.values()];
  }

  async user(email: string): Promise<UserDoc | undefined> {
    return this.db.get<UserDoc>(userId(email));
  }

  /** The account from the registry; while it cannot be read, as last seen here (`stale`). */
  private async userForLogin(email: string): Promise<{ doc: UserDoc | undefined; stale: boolean }> {
    try {
      const doc = await this.user(email);
      if (doc) this.remember(doc);
      return { doc, stale: false };
    } catch (err) {
      const cached = this.users.get(email);
      if (!cached || !couchUnavailable(err)) throw err;
      return { doc: cached, stale: true };
    }
  }

  /**
   * Applies one token request to the account (spec 9.4) and returns the row whose uid the
   * client gets. Races with other gateways are settled by the user document's _rev.
   */
  async login(email: string, login: Login): Promise<UserRow> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const { doc, stale } = await this.userForLogin(email);
      const rows = doc?.rows ?? [];
      // A node that is down or draining keeps its users (spec 9.4); only a removed one loses them.
      const decision = decide(rows, login, (n) => this.nodes.has(n));
      if (decision.kind === 'use' && !decision.changed) return decision.row;
      if (stale) throw new TokenError('unavailable', 'the registry cannot be written now');

      let fresh: UserRow | undefined;
      let target: Placement | undefined;
      if (decision.kind === 'new-uid') {
        if (!doc && !this.opts.allowNewUsers) throw new TokenError('new-users-disabled');
        target = await this.targetFor(email, rows, decision.node);
        const now = this.now();
        fresh = { ...decision.values, uid: await this.claimUid(email, target, now), createdAt: now, node: target.primary };
        // Queued before the swap: if this process dies after it, the old storage is still
        // deleted; if the swap loses, the purger finds the row unreplaced and, once the swap
        // has had time to settle, drops the entry.
        for (const r of rows) if (r.replacedAt === undefined) await this.queuePurge(email, r, now);
        await failpointPause('login:before-swap');
      }
      const next: UserDoc = { _id: userId(email), type: 'user', email, rows: applyDecision(rows, decision, fresh, this.now()) };
      if (doc?._rev) next._rev = doc._rev;
      const rev = await this.db.put(next);
      if (rev !== 'conflict') {
        this.remember({ ...next, _rev: rev });
        if (target) await this.count(target, +1);
        return fresh ?? (decision as { row: UserRow }).row;
      }
      // Another gateway decided first: give the uid back and decide again on what it stored.
      if (fresh) await this.releaseUid(fresh.uid);
    }
    throw new TokenError('unavailable', 'registry contention');
  }

  /** A key change keeps the user's nodes; anyone else is placed anew (federation/placement.ts). */
  private async targetFor(email: string, rows: readonly UserRow[], sameNode: string | undefined): Promise<Placement> {
    const current = currentRow(rows);
    if (sameNode && current && this.nodes.has(sameNode)) {
      const replica = (await this.placement(current.uid))?.replica;
      return replica ? { primary: sameNode, replica } : { primary: sameNode };
    }
    const placed = place(
      this.allNodes().map((n) => ({
        name: n.name,
        operator: n.operator ?? n.name,
        capacity: n.capacity,
        assigned: n.assigned ?? 0,
        weight: n.weight ?? 1,
        active: servable(n) && !n.draining && n.owner === undefined,
      })),
      email,
    );
    if (!placed) throw new TokenError('unavailable', 'no node available');
    return placed;
  }

  /** Keeps each node's count of user databases, by compare-and-swap on the node document. */
  private count(target: Placement, delta: number): Promise<void> {
    return this.countNodes([target.primary, target.replica], delta);
  }

  private async countNodes(names: Array<string | undefined>, delta: number): Promise<void> {
    for (const name of names) {
      if (!name) continue;
      for (let attempt = 0; attempt < 10; attempt++) {
        const node = await this.db.get<NodeDoc>(`node:${name}`);
        if (!node) break;
        const next = { ...node, assigned: Math.max(0, (node.assigned ?? 0) + delta) };
        if ((await this.db.put(next)) !== 'conflict') {
          this.nodes.set(name, next);
          break;
        }
      }
    }
  }

  /** A random free uid, claimed by creating its document (a conflict means it is taken). */
  private async claimUid(email: string, target: Placement, now: number): Promise<number> {
    for (;;) {
      const uid = randomInt(1, MAX_UID);
      const doc: UidDoc = { _id: uidId(uid), type: 'uid', email, node: target.primary, createdAt: now };
      if (target.replica) doc.replica = target.replica;
      const rev = await this.db.put(doc);
      if (rev !== 'conflict') return uid;
    }
  }

  private async releaseUid(uid: number): Promise<void> {
    const doc = await this.db.get<UidDoc>(uidId(uid));
    if (doc) await this.db.put({ ...doc, _deleted: true });
    this.uids.delete(uid);
  }

  /**
   * The account's key is dead: reset (a password set without the old one) or the account
   * deleted. Its current uid gets no more tokens and its storage refuses the tokens out there
   * (401), so each of its devices finds out at its next sync. A reset keeps the row until the
   * new key's first login replaces it (then the storage is purged after the usual grace); a
   * deletion replaces every row and queues its storage for purging with no grace.
   */
  async revokeAccount(email: string, how: 'reset' | 'deleted'): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const doc = await this.user(email);
      if (!doc) return;
      const now = this.now();
      const current = currentRow(doc.rows);
      const revoked = how === 'deleted' ? doc.rows : doc.rows.filter((r) => r === current);
      for (const r of revoked) {
        await this.revokeUid(r.uid, now);
        if (how === 'deleted' && r.replacedAt === undefined) await this.queuePurge(email, r, now, now);
      }
      const rows = doc.rows.map((r) => {
        if (!revoked.includes(r)) return r;
        const next: UserRow = { ...r, revokedAt: r.revokedAt ?? now };
        if (how === 'deleted') next.replacedAt = r.replacedAt ?? now;
        return next;
      });
      const rev = await this.db.put({ ...doc, rows } as UserDoc);
      if (rev !== 'conflict') {
        this.users.delete(email);
        return;
      }
    }
    throw new TokenError('unavailable', 'registry contention');
  }

  private async revokeUid(uid: number, now: number): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const placed = await this.db.get<UidDoc>(uidId(uid));
      if (!placed || placed.revokedAt !== undefined) return;
      const next: UidDoc = { ...placed, revokedAt: now };
      const rev = await this.db.put(next);
      if (rev !== 'conflict') {
        this.uids.replace(uid, { ...next, _rev: rev });
        return;
      }
    }
    throw new TokenError('unavailable', 'registry contention');
  }

  private async queuePurge(email: string, row: UserRow, now: number, notBefore = now + this.opts.purgeAfterMs): Promise<void> {
    const doc: PurgeDoc = { _id: `purge:${String(notBefore).padStart(15, '0')}:${row.uid}`, type: 'purge', uid: row.uid, email, node: row.node, notBefore, queuedAt: now };
    await this.db.put(doc);
  }

  /**
   * Deletes the storage of replaced uids whose grace period is over, a few at a time. Any
   * gateway may run it; deleting a database twice is harmless.
   */
  async purgeReplaced(destroy: (uid: number, node: string) => Promise<void>, limit = 20, destroyCopy: (uid: number, node: string) => Promise<void> = destroy): Promise<number> {
    const due = `purge:${String(this.now()).padStart(15, '0')}:\ufff0`;
    const queued = await this.db.range<PurgeDoc>('purge:', due, limit);
    let purged = 0;
    for (const entry of queued) {
      if (entry.copy) {
        const placed = await this.db.get<UidDoc>(uidId(entry.uid));
        const wanted = placed && [placed.node, placed.replica, placed.move?.to, placed.move?.replica].includes(entry.node);
        if (!wanted) {
          await destroyCopy(entry.uid, entry.node);
          purged++;
        }
        await this.db.put({ ...entry, _deleted: true });
        continue;
      }
      const user = await this.user(entry.email);
      const row = user?.rows.find((r) => r.uid === entry.uid);
      if (row && row.replacedAt === undefined && this.now() - (entry.queuedAt ?? 0) < SWAP_SETTLE_MS) continue;
      if (row?.replacedAt !== undefined) {
        await destroy(entry.uid, entry.node);
        const placed = await this.db.get<UidDoc>(uidId(entry.uid));
        // Uncounted once, even when two purge entries name the same uid.
        if (placed && placed.purgedAt === undefined && (await this.db.put({ ...placed, purgedAt: this.now() } as UidDoc)) !== 'conflict') {
          await this.count({ primary: placed.node, ...(placed.replica ? { replica: placed.replica } : {}) }, -1);
        }
        purged++;
      }
      await this.db.put({ ...entry, _deleted: true });
    }
    return purged;
  }
}
