// The little of the Level (v1 generation, the one PouchDB 9 runs on) that the shards use.
declare module 'leveldown' {
  type Callback = (err?: Error | null) => void;
  interface LevelDown {
    readonly location: string;
  }
  interface LevelDownConstructor {
    (location: string): LevelDown;
    destroy(location: string, cb: Callback): void;
  }
  const leveldown: LevelDownConstructor;
  export default leveldown;
}

declare module 'levelup' {
  type Callback = (err?: Error | null) => void;
  namespace levelup {
    interface LevelUp {
      clear(range: { gt?: string; gte?: string; lt?: string; lte?: string }, cb: Callback): void;
      close(): Promise<void>;
      iterator(options: { gt?: string; lt?: string; limit?: number; values?: boolean }): {
        next(cb: (err: Error | null | undefined, key?: unknown) => void): void;
        end(cb: Callback): void;
      };
    }
  }
  function levelup(store: unknown, options: Record<string, unknown>, cb: Callback): levelup.LevelUp;
  export default levelup;
}

declare module 'subleveldown/leveldown.js' {
  /** A key range of a parent levelup as a store of its own: keys are prefixed "!<prefix>!". */
  class SubDown {
    constructor(parent: unknown, prefix: string);
    /** "!<prefix>!" */
    readonly prefix: string;
  }
  export default SubDown;
}
