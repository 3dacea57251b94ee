// Emptying a node: `node drain <node> --move` and `operator evacuate <name>` mark nodes
// `evacuating` in the registry, and every gateway's tick moves their users off, a bounded
// number at a time: a user whose primary is there is moved (federation/user-move.ts) to the
// node the placement rules pick; a user whose replica is there gets a new replica. The work
// lives in the registry (the node document holds the pass's cursor), so an interrupted drain —
// the command stopped, a gateway killed — goes on by itself: any gateway picks it up.
//
// Passes go over every uid document in id order; a pass that finds nobody on the node (and no
// move off it in flight) ends the evacuation, and `node remove` succeeds.
import type { Logger } from 'pino';
import { AdminError } from './node-admin.js';
import type { NodeStores } from './node-stores.js';
import { place } from './placement.js';
import { servable, type Evacuation, type NodeDoc, type Registry, type UidDoc } from './registry.js';
import type { Mover } from './user-move.js';

export interface EvacuationOptions {
  /** Users moved off one node at once (moves in flight, over every gateway). */
  concurrency: number;
  /** Uid documents read per tick. */
  pageSize?: number;
}

export interface EvacuationProgress {
  node: string;
  evacuating: boolean;
  since: number | null;
  total: number;
  /** User databases still on the node (primaries and replicas). */
  remaining: number;
  moving: number;
  /** When it was over (the node holds no user database), if it is. */
  endedAt: number | null;
}

const uidOf = (doc: UidDoc): number => Number(doc._id.slice('uid:'.length));
const operatorOf = (n: NodeDoc) => n.operator ?? n.name;

export class Evacuator {
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly nodes: NodeStores,
    private readonly mover: Mover,
    private readonly opts: EvacuationOptions,
    private readonly logger: Logger,
  ) {}

  /** Starts emptying the node (it also takes no new users). Asking again changes nothing. */
  async start(name: string, otherOperators = false): Promise<EvacuationProgress> {
    const node = await this.registry.updateNode(name, (n) => {
      if (n.evacuating) return undefined;
      const evacuating: Evacuation = { since: Date.now(), total: n.assigned ?? 0 };
      if (otherOperators) evacuating.otherOperators = true;
      return { ...n, draining: true, evacuating };
    });
    if (!node) throw new AdminError(404, `no node ${name}`);
    if (!(await this.nodes.endpoint(name))) throw new AdminError(409, 'the embedded default node cannot be emptied by moves (no Couch replication)');
    void this.tick();
    return this.progress(name);
  }

  async progress(name: string): Promise<EvacuationProgress> {
    const node = await this.registry.freshNode(name).then(() => this.registry.updateNode(name, () => undefined));
    if (!node) throw new AdminError(404, `no node ${name}`);
    const ev = node.evacuating;
    if (!ev) {
      const last = node.evacuated;
      return { node: name, evacuating: false, since: last?.since ?? null, total: last?.total ?? 0, remaining: 0, moving: 0, endedAt: last?.endedAt ?? null };
    }
    return { node: name, evacuating: true, since: ev.since, total: ev.total, remaining: node.assigned ?? 0, moving: (await this.movesOff(name)).length, endedAt: null };
  }

  tick(): Promise<void> {
    this.ticking ??= this.once().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async once(): Promise<void> {
    for (const n of this.registry.allNodes()) if (n.evacuating) await this.step(n.name);
  }

  /** Uids with a move off the node in flight. */
  private async movesOff(name: string): Promise<number[]> {
    const off: number[] = [];
    for (const uid of await this.registry.moves()) {
      const placed = await this.registry.placement(uid);
      if (placed?.move?.from === name) off.push(uid);
    }
    return off;
  }

  private async step(name: string): Promise<void> {
    const node = await this.registry.updateNode(name, () => undefined);
    const ev = node?.evacuating;
    if (!node || !ev) return;
    let inFlight = (await this.movesOff(name)).length;
    if (inFlight >= this.opts.concurrency) return;
    const pageSize = this.opts.pageSize ?? 200;
    const start = ev.cursor ?? 'uid:';
    const page = await this.registry.uidPage(start, pageSize + 1);
    let found = ev.found ?? 0;
    let cursor: string | undefined = page[pageSize]?._id;
    for (const doc of page.slice(0, pageSize)) {
      if (doc.purgedAt !== undefined || doc.revokedAt !== undefined || (doc.node !== name && doc.replica !== name)) continue;
      found++;
      if (doc.move) {
        this.logger.debug({ uid: uidOf(doc), node: name, move: doc.move }, 'evacuation: a move of this user is under way');
        continue; // counted in flight, or waiting out a back-off
      }
      if (inFlight >= this.opts.concurrency) {
        cursor = doc._id; // this one first next time
        found--;
        break;
      }
      try {
        if (doc.node === name) {
          const to = this.targetFor(doc, node, ev.otherOperators === true);
          if (!to) {
            this.logger.warn({ uid: uidOf(doc), node: name }, 'evacuation: no node can take this user now');
            continue;
          }
          await this.mover.request(uidOf(doc), to);
          inFlight++;
        } else {
          await this.mover.replaceReplica(uidOf(doc), name);
        }
      } catch (err) {
        this.logger.warn({ err, uid: uidOf(doc), node: name }, 'evacuation: this user is tried again in the next pass');
      }
    }
    if (cursor !== undefined) {
      await this.saveCursor(name, ev, cursor, found);
      return;
    }
    // End of a pass.
    if (found === 0 && inFlight === 0 && (await this.movesOff(name)).length === 0) {
      await this.registry.updateNode(name, (n) => {
        if (!n.evacuating || n.evacuating.since !== ev.since) return undefined;
        const next: NodeDoc = { ...n, evacuated: { since: ev.since, total: ev.total, endedAt: Date.now() } };
        delete next.evacuating;
        return next;
      });
      this.logger.info({ node: name, ms: Date.now() - ev.since, users: ev.total }, 'node emptied: no user database left on it');
      await this.registry.recordEvent({ kind: 'evacuated', node: name });
      // A person's own Couch that they gave up: it leaves the registry with its user.
      if (node.removeWhenEmpty) await this.registry.removeNode(name);
      return;
    }
    this.logger.debug({ node: name, found, inFlight }, 'evacuation: a pass over the uids is over; another begins');
    await this.saveCursor(name, ev, undefined, 0);
  }

  private async saveCursor(name: string, ev: Evacuation, cursor: string | undefined, found: number): Promise<void> {
    await this.registry.updateNode(name, (n) => {
      if (!n.evacuating || n.evacuating.since !== ev.since || n.evacuating.cursor !== ev.cursor) return undefined; // another gateway moved on
      const evacuating: Evacuation = { ...n.evacuating, found };
      if (cursor === undefined) delete evacuating.cursor;
      else evacuating.cursor = cursor;
      return { ...n, evacuating };
    });
  }

  /** Where a user of the node goes: by the placement rules, among the nodes that take users. */
  private targetFor(doc: UidDoc, from: NodeDoc, otherOperators: boolean): string | undefined {
    const candidates = this.registry
      .allNodes()
      .filter((n) => n.name !== from.name && this.nodes.replicable(n.name) && n.owner === undefined && servable(n) && !n.draining && !n.evacuating && this.nodes.serves(n.name))
      .filter((n) => !otherOperators || operatorOf(n) !== operatorOf(from));
    const placed = place(
      candidates.map((n) => ({ name: n.name, operator: operatorOf(n), capacity: n.capacity, assigned: n.assigned ?? 0, weight: n.weight ?? 1, active: true })),
      doc.email,
    );
    return placed?.primary;
  }
}
