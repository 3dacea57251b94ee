// Failback: a node that was out (failed, or downed by hand) answers again, but while it was
// out its users were served from their other copy, and it may hold writes that copy never got
// (acknowledged just before it died). Before it is served again, every user it holds is merged:
//
//   1. replicate returning → serving, noting on the serving copy, before they are written there,
//      the records it lacked (federation/restamp-intent.ts: a stopped failback forgets none)
//   2. on the serving copy: resolve conflicts (newest write wins, state timestamps merged) and
//      give the records whose returned version won a new timestamp, so every client's next
//      incremental sync sees them (SyncStore.restampReturned)
//   3. replicate serving → returning: both copies are the same again
//
// Then the switch back: the node's users are refused for a moment (503, Retry-After) until every
// gateway has seen it (a gateway that had not yet learned would still write to the other copy);
// the writes of that moment are merged the other way (other copy → node, restamped), and the
// needsMerge flag is cleared: the node serves its users again. One gateway does
// it, holding a lease in the node document; another takes over if that gateway dies. Every
// step can be repeated without harm.
import type { Metrics } from '../common/metrics.js';
import type { Logger } from 'pino';
import { failpoint } from '../common/failpoint.js';
import type { NodeStores } from './node-stores.js';
import { replicateUser } from './replicator.js';
import { RestampIntent } from './restamp-intent.js';
import type { NodeDoc, Registry, UidDoc } from './registry.js';

export interface FailbackOptions {
  owner: string;
  leaseMs: number;
  /** How long every gateway may take to learn of a registry change (its _changes polling). */
  propagationMs: number;
  /** The gateway's metrics: failbacks this gateway completed. */
  metrics?: Metrics;
}

export interface FailbackReport {
  node: string;
  users: number;
  restamped: number;
  skipped: number;
  ms: number;
}

const uidOf = (placed: UidDoc): string => placed._id.slice('uid:'.length);

export class Failback {
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly nodes: NodeStores,
    private readonly opts: FailbackOptions,
    private readonly logger: Logger,
  ) {}

  /** Called periodically: merges back a node that answers again and needs it, if no one else is. */
  tick(): Promise<unknown> {
    this.running ??= this.once().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Answers again, has users to merge back, and no other gateway holds a live lease on it. */
  private mergeable(n: NodeDoc): boolean {
    if (!n.needsMerge || n.downed || n.failedAt !== undefined) return false;
    return !(n.merging && n.merging.until > Date.now() && n.merging.owner !== this.opts.owner);
  }

  private async once(): Promise<void> {
    for (const n of this.registry.allNodes()) {
      // Left by a gateway that died in the switch: nothing is merging any more.
      if (n.switchingSince !== undefined && !(n.merging && n.merging.until > Date.now())) await this.clearSwitch(n.name);
      // The cached view first: a claim costs a registry read and write.
      if (!this.mergeable(n) || !(await this.claim(n.name))) continue;
      const report: FailbackReport = { node: n.name, users: 0, restamped: 0, skipped: 0, ms: 0 };
      try {
        await this.mergeNode(n.name, report);
        // Counted as soon as the node is served again: the event log is one more registry write, and
        // a scrape that already sees the node active must see the failback too.
        this.opts.metrics?.failbacks.inc({ node: n.name });
        this.logger.info({ failback: report }, 'node merged back and served again');
        await this.registry.recordEvent({ kind: 'failback', node: n.name });
      } catch (err) {
        // What it did so far counts: the next attempt does not restamp those records again.
        this.logger.warn({ err, node: n.name, failback: { ...report, stopped: true } }, 'failback stopped; it starts over');
        await this.release(n.name, false);
      }
    }
  }

  private claim(node: string): Promise<NodeDoc | undefined> {
    const owner = this.opts.owner;
    return this.registry
      .updateNode(node, (n) => (this.mergeable(n) ? { ...n, merging: { owner, until: Date.now() + this.opts.leaseMs } } : undefined))
      .then((n) => (n?.merging?.owner === owner && n.needsMerge ? n : undefined));
  }

  /** Ends the claim; `done` also clears needsMerge: the node is served again. */
  private async release(node: string, done: boolean): Promise<boolean> {
    let released = false;
    await this.registry.updateNode(node, (n) => {
      if (n.merging?.owner !== this.opts.owner) return undefined;
      // Out again meanwhile: the next failback starts over.
      if (done && (n.downed || n.failedAt !== undefined)) done = false;
      const next = { ...n };
      delete next.merging;
      delete next.switchingSince;
      if (done) next.needsMerge = false;
      released = done;
      return next;
    });
    return released;
  }

  private async clearSwitch(node: string): Promise<void> {
    await this.registry.updateNode(node, (n) => {
      if (n.switchingSince === undefined) return undefined;
      const next = { ...n };
      delete next.switchingSince;
      return next;
    });
  }

  async mergeNode(node: string, report: FailbackReport = { node, users: 0, restamped: 0, skipped: 0, ms: 0 }): Promise<FailbackReport> {
    const started = Date.now();
    let renewed = Date.now();
    for await (const placed of this.registry.uidsOn(node)) {
      const other = placed.node === node ? placed.replica : placed.node;
      if (other === undefined) continue;
      if (!this.nodes.serves(other)) {
        // Its other copy is out too: nothing was served from it, nothing to merge.
        report.skipped++;
        continue;
      }
      report.restamped += await this.mergeUser(uidOf(placed), node, other);
      report.users++;
      if (Date.now() - renewed > this.opts.leaseMs / 3) {
        renewed = Date.now();
        if (!(await this.claim(node))) throw new Error('failback lease lost');
      }
    }
    await this.registry.updateNode(node, (n) => (n.merging?.owner === this.opts.owner ? { ...n, switchingSince: Date.now() } : undefined));
    try {
      await new Promise((r) => setTimeout(r, this.opts.propagationMs));
      for await (const placed of this.registry.uidsOn(node)) {
        if (placed.node !== node || placed.replica === undefined || !this.nodes.serves(placed.replica)) continue;
        report.restamped += await this.mergeUser(uidOf(placed), placed.replica, node);
      }
      if (!(await this.release(node, true))) throw new Error('node went out again during failback');
    } finally {
      await this.clearSwitch(node);
    }
    report.ms = Date.now() - started;
    return report;
  }

  /** Steps 1–3 for one user; returns how many records were restamped. */
  async mergeUser(uid: string, returning: string, serving: string): Promise<number> {
    const [r, s] = await Promise.all([this.nodes.endpoint(returning), this.nodes.endpoint(serving)]);
    if (!r || !s) return 0;
    const intent = new RestampIntent(s.client, uid);
    // What an earlier attempt copied and did not restamp comes first.
    const noted = await intent.pending();
    const { written, skipped } = await replicateUser(uid, r, s, { beforeWrite: (docs) => intent.note(docs) });
    failpoint('failback:after-copy');
    if (skipped.length > 0) this.logger.warn({ node: returning, skipped: skipped.length, first: skipped[0] }, 'failback: revisions the returning node could not give');
    const returned = [...noted, ...written];
    const restamped = returned.length > 0 ? await (await this.nodes.storeOf(serving)).restampReturned(uid, returned) : 0;
    if (noted.length > 0 || written.length > 0) await intent.clear();
    await replicateUser(uid, s, r);
    return restamped;
  }
}
