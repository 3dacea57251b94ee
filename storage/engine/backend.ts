// What a storage backend provides to the engine: user databases to open and close.
import type { DocDb } from '../doc-db.js';
import type { UpdateFeed } from './update-feed.js';

export interface Backend {
  /**
   * True when no other process can open these databases (embedded LevelDB holds a lock), and
   * a bulk write of one database is atomic (one LevelDB batch).
   */
  readonly exclusive: boolean;
  /** Check the design document after opening without holding up the request (remote nodes). */
  readonly installDesignInBackground?: boolean;
  /** Reports writes to its databases from anywhere: with it, committed states may be cached. */
  readonly updates?: UpdateFeed;
  open(uid: string): Promise<DocDb>;
  close(uid: string, db: DocDb): Promise<void>;
  /** Deletes the user's database and everything in it (the pool has closed it). */
  destroy(uid: string): Promise<void>;
  /** True when the user has a database (without creating one). */
  exists(uid: string): Promise<boolean>;
  /** Cheap liveness check (for __heartbeat__). */
  check(): Promise<void>;
  /** Startup checks with a clear message for an operator when the backend is unusable. */
  verify(): Promise<unknown>;
  shutdown(): Promise<void>;
}
