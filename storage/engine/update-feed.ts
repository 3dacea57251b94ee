// What the engine needs of a node-wide feed of database updates to keep the states it caches
// coherent with writes made elsewhere (other gateways, replication, failback).

export interface UpdateFeed {
  /**
   * Changes whenever the feed (re)connects; undefined while it is not delivering. A state read
   * in one epoch may be reused only in the same epoch: events missed while disconnected are
   * never replayed, the cache is dropped instead.
   */
  readonly epoch: number | undefined;
  /** Called with the uid of every user database written to, from the moment the epoch began. */
  onUpdate(listener: (uid: string) => void): void;
  /** Starts following, once; the pool calls it when it first opens a user. */
  start(): void;
}
