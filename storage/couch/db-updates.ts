// One node-wide `_db_updates` feed per Couch node: every write to a user database, by any
// gateway, by replication or by failback, reaches this gateway as one event, so the states it
// caches are dropped as soon as Couch reports them changed. A node without the feed
// (pouchdb-server answers 400; CouchDB without its `_global_changes` database answers 404)
// simply leaves the cache off: every read asks Couch, as before.
import { uidOfDbName } from '../db-name.js';
import type { UpdateFeed } from '../engine/update-feed.js';
import { CouchError, type CouchClient } from './couch-client.js';

interface DbUpdates {
  results: Array<{ db_name: string; type: string }>;
  last_seq: string | number;
}

/** How long to wait before asking a node again that does not offer the feed. */
const UNSUPPORTED_RETRY_MS = 60_000;

export class DbUpdatesFeed implements UpdateFeed {
  private live: number | undefined;
  private epochs = 0;
  private started = false;
  private stopped = false;
  private readonly listeners: Array<(uid: string) => void> = [];
  private wake: (() => void) | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly client: CouchClient) {}

  get epoch(): number | undefined {
    return this.live;
  }

  onUpdate(listener: (uid: string) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.follow();
  }

  stop(): void {
    this.stopped = true;
    this.live = undefined;
    this.abort.abort();
    this.wake?.();
  }

  private async follow(): Promise<void> {
    // A longpoll returns within `timeout` even when nothing happens, well inside the client's
    // own timeout: a feed that stops answering is noticed, and the cache stops being trusted.
    const timeout = Math.max(100, Math.min(10_000, Math.floor(this.client.timeoutMs / 2)));
    let failures = 0;
    // Where the last epoch's feed got to: a feed that broke off resumes from there, and once
    // it has delivered every event since, what was cached under that epoch is right again,
    // so that one dropped connection does not send every user's next read to Couch.
    let resume: { since: string | number; epoch: number } | undefined;
    while (!this.stopped) {
      try {
        let since: string | number;
        if (resume) {
          const missed = await this.client
            .request<DbUpdates>({ method: 'GET', path: '_db_updates', qs: { feed: 'normal', since: resume.since }, retries: 0, signal: this.abort.signal })
            .catch((e: unknown) => {
              // The node no longer knows that position (a new node behind the same address): start afresh.
              if (e instanceof CouchError && e.statusCode === 400) return undefined;
              throw e;
            });
          if (missed) {
            this.deliver(missed);
            since = missed.last_seq;
            this.live = resume.epoch;
          } else {
            resume = undefined;
            continue;
          }
        } else {
          // `since=now` in a normal feed answers at once with the node's current position: from
          // there on, no write is missed.
          const now = await this.client.request<DbUpdates>({ method: 'GET', path: '_db_updates', qs: { feed: 'normal', since: 'now' }, retries: 0, signal: this.abort.signal });
          since = now.last_seq;
          this.live = ++this.epochs;
        }
        resume = { since, epoch: this.live };
        failures = 0;
        while (!this.stopped) {
          const batch = await this.client.request<DbUpdates>({ method: 'GET', path: '_db_updates', qs: { feed: 'longpoll', since, timeout }, retries: 0, signal: this.abort.signal });
          this.deliver(batch);
          since = batch.last_seq;
          resume.since = since;
        }
      } catch (e) {
        // Events may be missed from here on: nothing cached is trusted until the feed has
        // caught up again (or, when it cannot resume, until a new epoch).
        this.live = undefined;
        if (this.stopped) return;
        const unsupported = e instanceof CouchError && (e.statusCode === 400 || e.statusCode === 404 || e.statusCode === 405);
        if (unsupported) resume = undefined;
        failures++;
        await this.pause(unsupported ? UNSUPPORTED_RETRY_MS : Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      }
    }
  }

  private deliver(batch: DbUpdates): void {
    for (const e of batch.results) {
      const uid = uidOfDbName(e.db_name);
      if (uid !== undefined) for (const l of this.listeners) l(uid);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
