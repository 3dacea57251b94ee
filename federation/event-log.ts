// What happened to nodes and users lately (failovers, failbacks, moves, evacuations), for the
// operator dashboard: small documents in the registry, so every gateway's events are in one
// list. Ids sort by time (`event:<ms, 15 digits>:<random>`), so the newest are one descending
// range read and the expired ones one ascending read from the start.
//
// An event is a report, never part of what it reports: writing one is best effort, and a
// registry that refuses it costs the event, not the failover.
import { randomBytes } from 'node:crypto';
import type { Doc, DocDb } from '../storage/doc-db.js';

export type EventKind = 'failover' | 'failback' | 'move' | 'move-rolled-back' | 'evacuated';

export interface RegistryEvent {
  kind: EventKind;
  node?: string;
  from?: string;
  to?: string;
  uid?: number;
}

export interface EventDoc extends Doc, RegistryEvent {
  type: 'event';
  at: number;
}

/** Events are kept a week; older ones are deleted a batch at a time. */
const KEEP_MS = 7 * 86_400_000;
const PRUNE_BATCH = 100;
/** A gateway looks for expired events at most this often (events are rare; a read each is waste). */
const PRUNE_EVERY_MS = 60_000;

const idAt = (ms: number): string => `event:${String(ms).padStart(15, '0')}`;

export class EventLog {
  private lastPrune = 0;

  constructor(
    private readonly db: DocDb,
    private readonly now: () => number = Date.now,
  ) {}

  async record(event: RegistryEvent): Promise<void> {
    const at = this.now();
    const doc: EventDoc = { _id: `${idAt(at)}:${randomBytes(4).toString('hex')}`, type: 'event', at, ...event };
    try {
      await this.db.put(doc);
      if (at - this.lastPrune >= PRUNE_EVERY_MS) {
        this.lastPrune = at;
        await this.prune(at);
      }
    } catch {
      // best effort (see above)
    }
  }

  /** The newest `limit` events, newest first. */
  async recent(limit: number): Promise<EventDoc[]> {
    return this.db.range<EventDoc>('event:', 'event:\ufff0', limit, true);
  }

  /** Deletes a batch of the events older than a week; two gateways at once only conflict. */
  async prune(now = this.now()): Promise<number> {
    const expired = await this.db.range<EventDoc>('event:', idAt(now - KEEP_MS), PRUNE_BATCH);
    if (expired.length === 0) return 0;
    await this.db.bulk(expired.map((d) => ({ _id: d._id, _rev: d._rev as string, _deleted: true })));
    return expired.length;
  }
}
