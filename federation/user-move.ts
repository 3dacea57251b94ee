// Moving one user's storage to other nodes while the user keeps syncing:
//
//   1. copy      replicate source → target (and → the new replica) until a pass finds nothing
//                new; the user is served from the source all along
//   2. switch    the uid document says so: every gateway refuses the user (503, Retry-After)
//                and answers no write that lands on the source after it learned (node-stores.ts).
//                Once every gateway has learned, the source copy is marked retired (its
//                gateways refuse the user there whatever their registry says), the last writes
//                are copied, and the target is checked to hold every revision the source has
//   3. placed    one compare-and-swap points the uid at the target and the new replica; the
//                copies the user no longer has are deleted after a grace period
//
// The move lives in the uid document (registry.ts, MoveRecord) with a lease: any gateway takes
// over a move whose gateway died, at the step where it stopped, since every step can be
// repeated. A move that cannot go on (a node out, failures again and again) is rolled back: the
// source copy is unmarked, the switch cleared, and the target's copy deleted after the grace.
// Records keep their timestamps: a device's next `newer=` sync sees exactly what it had not.
import type { Metrics } from '../common/metrics.js';
import type { Logger } from 'pino';
import { failpoint } from '../common/failpoint.js';
import { userDbName } from '../storage/db-name.js';
import { AdminError } from './node-admin.js';
import type { NodeStores } from './node-stores.js';
import { place } from './placement.js';
import { missingRevisions } from './replicate-db.js';
import { replicateUser } from './replicator.js';
import { servable, type MoveRecord, type NodeDoc, type Registry, type UidDoc } from './registry.js';
import { currentRow } from './user-model.js';

export interface MoverOptions {
  owner: string;
  leaseMs: number;
  /** How long every gateway may take to learn of a registry change. */
  propagationMs: number;
  /** How long the copies a user left stay (retired) before they are deleted. */
  graceMs: number;
  /** Moves this gateway runs at once. */
  concurrency: number;
  /** The gateway's metrics: moves this gateway finished or rolled back. */
  metrics?: Metrics;
}

/** What a move looks like from outside (admin API, `syncgate user move`). */
export interface MoveStatus {
  uid: number;
  email: string;
  node: string;
  replica: string | null;
  move: { to: string; replica: string | null; from: string; stage: 'copy' | 'switch' | 'rollback'; requestedAt: number } | null;
  lastMove: UidDoc['lastMove'] | null;
}

/** Passes of copying before a switch goes ahead anyway (a user writing without pause). */
const COPY_PASSES = 5;
/** Failed attempts before a move is rolled back. */
const MAX_FAILURES = 5;

const uidOf = (doc: UidDoc): number => Number(doc._id.slice('uid:'.length));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function moveStatus(doc: UidDoc): MoveStatus {
  const m = doc.move;
  return {
    uid: uidOf(doc),
    email: doc.email,
    node: doc.node,
    replica: doc.replica ?? null,
    move: m ? { to: m.to, replica: m.replica ?? null, from: m.from, stage: m.rollback ? 'rollback' : m.switchingSince !== undefined ? 'switch' : 'copy', requestedAt: m.requestedAt } : null,
    lastMove: doc.lastMove ?? null,
  };
}

export class Mover {
  private readonly running = new Map<number, Promise<void>>();
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly nodes: NodeStores,
    private readonly opts: MoverOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * The uid of `who`: a uid, or the current one of the first of the accounts (as the registry
   * names them, `<sub>@<issuer domain>`) it has.
   */
  async resolve(who: string, accounts: string[] = [who]): Promise<number> {
    if (/^\d+$/.test(who)) return Number(who);
    for (const email of accounts) {
      const user = await this.registry.user(email);
      const row = user && currentRow(user.rows);
      if (row) return row.uid;
    }
    throw new AdminError(404, `no account ${who} with storage`);
  }

  async status(uid: number): Promise<MoveStatus> {
    const doc = await this.registry.freshPlacement(uid);
    if (!doc) throw new AdminError(404, `no uid ${uid} in the registry`);
    return moveStatus(doc);
  }

  /**
   * Asks for uid to be moved to node `to`; the move runs in the background (tick). To a
   * person's own Couch (only theirs), a replica on an operator's node is kept only if asked.
   */
  async request(uid: number, to: string, opts: { replica?: boolean } = {}): Promise<MoveStatus> {
    const doc = await this.registry.freshPlacement(uid);
    if (!doc) throw new AdminError(404, `no uid ${uid} in the registry`);
    if (doc.revokedAt !== undefined || doc.purgedAt !== undefined) throw new AdminError(409, `uid ${uid} no longer has storage (account deleted or key changed)`);
    if (doc.move) {
      if (doc.move.to !== to || doc.move.rollback) throw new AdminError(409, `uid ${uid} is already moving to ${doc.move.to}`);
      await this.registry.noteMove(uid);
      return moveStatus(doc);
    }
    if (doc.node === to) throw new AdminError(409, `uid ${uid} is on node ${to} already`);
    const target = await this.registry.freshNode(to);
    if (!target) throw new AdminError(404, `no node ${to}`);
    if (!servable(target) || target.draining || target.evacuating) throw new AdminError(409, `node ${to} takes no users now (down, failed, merging or draining)`);
    if (!(await this.nodes.endpoint(to)) || !(await this.nodes.endpoint(doc.node))) {
      throw new AdminError(409, 'users move between Couch nodes only (the embedded default node cannot be replicated)');
    }
    if (!this.nodes.serves(doc.node)) throw new AdminError(409, `node ${doc.node} is out: its users are moved once it is back`);
    if (target.owner !== undefined && target.owner !== doc.email) throw new AdminError(409, `node ${to} is another person's own Couch`);
    const replica = target.owner !== undefined && opts.replica !== true ? undefined : this.replicaFor(target, doc);
    const move: MoveRecord = { to, from: doc.node, requestedAt: Date.now(), ...(replica ? { replica } : {}), ...(doc.replica ? { fromReplica: doc.replica } : {}) };
    // Noted before the record: a gateway that dies between the two leaves a note that finds the
    // move (or, with no move recorded, is dropped a lease later), never a move nobody finds:
    // an evacuation skips a user whose move is under way and would wait for it forever.
    await this.registry.noteMove(uid);
    const stored = await this.registry.updateUid(uid, (u) => (u.move || u.node !== doc.node ? undefined : { ...u, move }));
    failpoint('move:recorded');
    if (!stored?.move || stored.move.requestedAt !== move.requestedAt) {
      if (stored?.move?.to === to) return moveStatus(stored);
      throw new AdminError(409, `uid ${uid} changed meanwhile; ask again`);
    }
    // Noted again: another gateway may have dropped the first note as stale (a note with no
    // move recorded yet, older than a lease) had recording it taken that long.
    await this.registry.noteMove(uid);
    void this.tick();
    return moveStatus(stored);
  }

  /**
   * The new replica: the current one while it fits (another node than the target, of another
   * operator where there is one), else by the placement rules. Never the source: gateways that
   * have not learned of the move would write there, and a replica's writes never reach the
   * primary.
   */
  private replicaFor(target: NodeDoc, doc: UidDoc, avoid?: string): string | undefined {
    const operatorOf = (n: NodeDoc) => n.operator ?? n.name;
    const fits = (n: NodeDoc | undefined): n is NodeDoc =>
      n !== undefined &&
      this.nodes.replicable(n.name) &&
      n.owner === undefined &&
      servable(n) &&
      !n.draining &&
      !n.evacuating &&
      n.name !== target.name &&
      n.name !== doc.node &&
      n.name !== avoid;
    const current = doc.replica === undefined ? undefined : this.registry.node(doc.replica);
    const others = this.registry.allNodes().filter(fits);
    if (fits(current) && (operatorOf(current) !== operatorOf(target) || !others.some((n) => operatorOf(n) !== operatorOf(target)))) return current.name;
    const placed = place(
      [target, ...others].map((n) => ({ name: n.name, operator: operatorOf(n), capacity: n.capacity, assigned: n.assigned ?? 0, weight: n.weight ?? 1, active: true })),
      doc.email,
    );
    // Ranked with the target among them, so the replica is chosen as it would be beside it.
    const ranked = [placed?.primary, placed?.replica].filter((n): n is string => n !== undefined && n !== target.name);
    const pick = others.find((n) => n.name === ranked[0] && operatorOf(n) !== operatorOf(target)) ?? others.find((n) => operatorOf(n) !== operatorOf(target)) ?? others[0];
    return pick?.name;
  }

  /**
   * Gives uid a new replica instead of the one on `avoid` (a node being emptied): the primary
   * is copied there, the placement changed, copied again (writes in between went to the old
   * replica), and the old copy deleted after the grace. No switch: the replica serves nobody
   * while the primary is up. With no node to take it, the user is left with no replica.
   */
  async replaceReplica(uid: number, avoid: string): Promise<boolean> {
    const doc = await this.registry.freshPlacement(uid);
    if (!doc || doc.replica !== avoid || doc.move || !this.nodes.serves(doc.node)) return false;
    const primary = this.registry.node(doc.node);
    if (!primary) return false;
    const replica = this.replicaFor(primary, doc, avoid);
    if (replica !== undefined) await this.copy(uid, doc.node, replica, false, false);
    const stored = await this.registry.updateUid(uid, (u) => {
      if (u.replica !== avoid || u.node !== doc.node || u.move) return undefined;
      const next: UidDoc = { ...u };
      if (replica === undefined) delete next.replica;
      else next.replica = replica;
      return next;
    });
    if (!stored || stored.replica !== replica || stored.node !== doc.node) return false;
    if (replica !== undefined) await this.copy(uid, doc.node, replica, false, false);
    await this.registry.queueCopyPurge(uid, doc.email, avoid, Date.now() + this.graceMs());
    await this.registry.countOn([replica], +1);
    await this.registry.countOn([avoid], -1);
    if (replica === undefined) this.logger.warn({ uid, node: avoid }, 'no node can take the replica: the user has one copy');
    return true;
  }

  /** Runs the moves that need a gateway: new ones, and those whose gateway stopped renewing. */
  tick(): Promise<void> {
    this.ticking ??= this.once().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async once(): Promise<void> {
    for (const uid of await this.registry.moves()) {
      if (this.running.size >= this.opts.concurrency) return;
      if (this.running.has(uid)) continue;
      const claimed = await this.claim(uid);
      if (!claimed) continue;
      const run = this.run(claimed).finally(() => this.running.delete(uid));
      this.running.set(uid, run);
    }
  }

  /** Waits for the moves this gateway runs (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.running.values()]);
  }

  private async claim(uid: number): Promise<UidDoc | undefined> {
    const owner = this.opts.owner;
    const doc = await this.registry.updateUid(uid, (u) => {
      const m = u.move;
      // Held by a live gateway, or waiting out the back-off after a failure.
      if (!m || (m.until ?? 0) > Date.now()) return undefined;
      return { ...u, move: { ...m, owner, until: Date.now() + this.opts.leaseMs } };
    });
    if (!doc?.move) {
      // Over (its gateway died before dropping the note), or gone; a note just written for a
      // new move is left alone.
      await this.registry.forgetMove(uid, this.opts.leaseMs);
      return undefined;
    }
    return doc.move.owner === owner ? doc : undefined;
  }

  /** Changes the move by compare-and-swap while this gateway holds it; throws once it does not. */
  private async update(uid: number, change: (u: UidDoc, m: MoveRecord) => UidDoc): Promise<UidDoc> {
    let lost = false;
    const doc = await this.registry.updateUid(uid, (u) => {
      if (u.move?.owner !== this.opts.owner) {
        lost = true;
        return undefined;
      }
      return change(u, u.move);
    });
    if (!doc || lost) throw new Error(`move of uid ${uid}: lease lost`);
    return doc;
  }

  private renew(uid: number): Promise<UidDoc> {
    return this.update(uid, (u, m) => ({ ...u, move: { ...m, until: Date.now() + this.opts.leaseMs } }));
  }

  private async run(doc: UidDoc): Promise<void> {
    const uid = uidOf(doc);
    const m = doc.move as MoveRecord;
    const started = Date.now();
    try {
      if (m.rollback !== undefined) return await this.rollback(uid, m.rollback);
      // The switch was made before this gateway took over: only the record is left.
      if (doc.node === m.to) return await this.finish(uid, doc, 0);
      for (const n of [m.from, m.to, m.replica]) {
        if (n !== undefined && !this.nodes.serves(n)) return await this.rollback(uid, `node ${n} is out`);
      }
      const copied = { docs: 0, bytes: 0 };
      const add = (c: { docs: number; bytes: number }) => ((copied.docs += c.docs), (copied.bytes += c.bytes));
      if (m.switchingSince === undefined) {
        add(await this.copy(uid, m.from, m.to));
        if (m.replica !== undefined && m.replica !== m.fromReplica) add(await this.copy(uid, m.from, m.replica));
        failpoint('move:after-copy');
        doc = await this.update(uid, (u, mv) => ({ ...u, move: { ...mv, switchingSince: Date.now(), until: Date.now() + this.opts.leaseMs } }));
      }
      const switchingSince = (doc.move as MoveRecord).switchingSince as number;
      // Every gateway has learned of the switch: none writes to the source any more.
      await sleep(Math.max(0, switchingSince + this.opts.propagationMs - Date.now()));
      await (await this.nodes.storeOf(m.from)).retire(String(uid), m.from);
      failpoint('move:after-retire');
      add(await this.copy(uid, m.from, m.to, true));
      await this.verify(uid, m.from, m.to);
      if (m.replica !== undefined) add(await this.copy(uid, m.from, m.replica, true));
      failpoint('move:before-switch');
      doc = await this.update(uid, (u, mv) => {
        // Served from the target from here on; the record stays until the old copies are queued.
        const move: MoveRecord = { ...mv };
        delete move.switchingSince;
        const next: UidDoc = { ...u, node: mv.to, move };
        if (mv.replica === undefined) delete next.replica;
        else next.replica = mv.replica;
        return next;
      });
      await this.finish(uid, doc, Date.now() - switchingSince);
      this.logger.info({ move: { uid, from: m.from, to: m.to, replica: m.replica ?? null, docs: copied.docs, bytes: copied.bytes, switchMs: Date.now() - switchingSince, ms: Date.now() - started } }, 'user moved');
      this.opts.metrics?.userMoves.inc({ outcome: 'moved' });
      await this.registry.recordEvent({ kind: 'move', uid, from: m.from, to: m.to });
      this.movedTotal++;
    } catch (err) {
      const failures = (m.failures ?? 0) + 1;
      this.logger.warn({ err, uid, to: m.to, failures }, 'move stopped; it is taken up again');
      // Released to any gateway after a back-off; after too many failures, undone.
      const backoff = Math.min(60_000, 1000 * 2 ** Math.min(failures, 6));
      const giveUp = failures >= MAX_FAILURES && m.rollback === undefined;
      await this.registry
        .updateUid(uid, (u) => {
          if (u.move?.owner !== this.opts.owner) return undefined;
          const next: MoveRecord = { ...u.move, failures, until: Date.now() + (giveUp ? 0 : backoff) };
          delete next.owner;
          if (giveUp) {
            next.rollback = `failed ${failures} times: ${(err as Error).message}`;
            next.unmark = next.unmark || next.switchingSince !== undefined;
            delete next.switchingSince;
          }
          return { ...u, move: next };
        })
        .catch(() => undefined);
    }
  }

  /** Moves this gateway finished since it started. */
  movedTotal = 0;

  /** Documents and bytes (of their JSON) copied by this gateway's moves since it started. */
  readonly copiedTotal = { docs: 0, bytes: 0 };

  /** Replicates until a pass finds nothing new (or, `final`, until nothing is left at all). */
  private async copy(uid: number, from: string, to: string, final = false, renew = true): Promise<{ docs: number; bytes: number }> {
    const [a, b] = await Promise.all([this.nodes.endpoint(from), this.nodes.endpoint(to)]);
    if (!a || !b) throw new Error(`move of uid ${uid}: ${!a ? from : to} is not a Couch node`);
    const copied = { docs: 0, bytes: 0 };
    for (let pass = 0; ; pass++) {
      const { written } = await replicateUser(String(uid), a, b);
      copied.docs += written.length;
      for (const d of written) copied.bytes += JSON.stringify(d).length;
      if (written.length === 0 || (!final && pass >= COPY_PASSES)) {
        this.copiedTotal.docs += copied.docs;
        this.copiedTotal.bytes += copied.bytes;
        return copied;
      }
      if (renew) await this.renew(uid);
    }
  }

  /** The target holds every revision the (retired) source holds, or the move does not switch. */
  private async verify(uid: number, from: string, to: string): Promise<void> {
    const [a, b] = await Promise.all([this.nodes.endpoint(from), this.nodes.endpoint(to)]);
    if (!a || !b) throw new Error(`move of uid ${uid}: not a Couch node`);
    const missing = await missingRevisions(a.client, b.client, userDbName(String(uid)));
    if (missing > 0) throw new Error(`move of uid ${uid}: node ${to} lacks ${missing} revisions the source has`);
  }

  /** After the switch: the count of users per node, the old copies queued for deletion, the record. */
  private async finish(uid: number, doc: UidDoc, switchMs: number): Promise<void> {
    const m = doc.move as MoveRecord;
    const kept = new Set([m.to, m.replica]);
    const left = [m.from, m.fromReplica].filter((n): n is string => n !== undefined && !kept.has(n));
    const added = [m.to, m.replica].filter((n): n is string => n !== undefined && n !== m.from && n !== m.fromReplica);
    for (const n of left) await this.registry.queueCopyPurge(uid, doc.email, n, Date.now() + this.graceMs());
    await this.update(uid, (u) => {
      const next: UidDoc = { ...u, lastMove: { to: m.to, outcome: 'moved', at: Date.now(), switchMs } };
      delete next.move;
      return next;
    });
    // Counted once the record is gone: a crash in between leaves a count off by one, which
    // `node remove` corrects from the placements themselves.
    await this.registry.countOn(added, +1);
    await this.registry.countOn(left, -1);
    await this.registry.forgetMove(uid);
  }

  /**
   * Never shorter than twice the time gateways take to learn of the new placement: until then
   * one may still send the user to the old copy, which refuses them only while it exists.
   */
  private graceMs(): number {
    return Math.max(this.opts.graceMs, 2 * this.opts.propagationMs);
  }

  /** Undoes a move: the source serves again, the switch is cleared, the new copies go later. */
  private async rollback(uid: number, reason: string): Promise<void> {
    // The switch ends at once: the user is served from the source again, or, while it is out,
    // from the replica (failover).
    let doc = await this.update(uid, (u, m) => {
      const move: MoveRecord = { ...m, rollback: m.rollback ?? reason, unmark: m.unmark || m.switchingSince !== undefined, until: Date.now() + this.opts.leaseMs };
      delete move.switchingSince;
      return { ...u, move };
    });
    const m = doc.move as MoveRecord;
    if (m.unmark) {
      // The source may have been marked retired. A source that is out stays marked (its users
      // are served from their replicas) until an attempt after it is back.
      if (!this.nodes.reachable(m.from)) {
        await this.update(uid, (u, mv) => {
          const next: MoveRecord = { ...mv, until: Date.now() + this.opts.leaseMs };
          delete next.owner;
          return { ...u, move: next };
        });
        return;
      }
      await (await this.nodes.storeOf(m.from)).retire(String(uid), undefined);
    }
    for (const n of [m.to, m.replica]) {
      if (n !== undefined && n !== m.from && n !== m.fromReplica) await this.registry.queueCopyPurge(uid, doc.email, n, Date.now() + this.graceMs());
    }
    doc = await this.update(uid, (u) => {
      const next: UidDoc = { ...u, lastMove: { to: m.to, outcome: 'rolled back', at: Date.now(), reason: m.rollback ?? reason } };
      delete next.move;
      return next;
    });
    await this.registry.forgetMove(uid);
    this.logger.warn({ uid, to: m.to, reason }, 'move rolled back');
    this.opts.metrics?.userMoves.inc({ outcome: 'rolled_back' });
    await this.registry.recordEvent({ kind: 'move-rolled-back', uid, from: m.from, to: m.to });
  }
}

