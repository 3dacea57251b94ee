// The tokenserver's user model (spec 9.4), as a pure function of a user's history and one
// login: which uid the login gets, whether it needs a new one, and what moves forward. The
// registry stores the result with a compare-and-swap; keeping the rules here, free of I/O,
// lets them be tested line by line against the spec.
import { TokenError } from '../common/errors.js';

/** One uid of an account: a row of Mozilla's `users` table. */
export interface UserRow {
  uid: number;
  /** 0 when never provided. */
  generation: number;
  /** 32 hex characters, or '' for none. */
  clientState: string;
  /** null when never provided. */
  keysChangedAt: number | null;
  /** Milliseconds. */
  createdAt: number;
  /** Milliseconds; set once a newer row (a key change, a move) takes over. */
  replacedAt?: number;
  /**
   * Milliseconds; set when the account's key was reset or the account deleted: the key this
   * row was made for is dead, so it gets no more tokens; only a new key (a new uid) does.
   */
  revokedAt?: number;
  /** Registry name of the node holding this uid's storage. */
  node: string;
}

/** What one token request says about the account (absent values are undefined; 0 is absent). */
export interface Login {
  generation?: number;
  keysChangedAt?: number;
  clientState: string;
}

export type Decision =
  /** Use this row; `row` carries any values moved forward in place. */
  | { kind: 'use'; row: UserRow; changed: boolean }
  /** Insert a new row with these values on `node` (a new uid); older rows become replaced. */
  | { kind: 'new-uid'; values: Omit<UserRow, 'uid' | 'createdAt' | 'node'>; node?: string };

/** The row that counts: largest (generation, createdAt). */
export function currentRow(rows: readonly UserRow[]): UserRow | undefined {
  let best: UserRow | undefined;
  for (const r of rows) {
    if (!best || r.generation > best.generation || (r.generation === best.generation && r.createdAt > best.createdAt)) best = r;
  }
  return best;
}

// Comparisons with an absent value are false (spec 9.4).
const gt = (a: number | null | undefined, b: number | null | undefined): boolean => a != null && b != null && a > b;
const le = (a: number | null | undefined, b: number | null | undefined): boolean => a != null && b != null && a <= b;

/** Decides one login against the account's rows; throws the spec's 401s. */
export function decide(rows: readonly UserRow[], login: Login, nodeUsable: (node: string) => boolean): Decision {
  const u = currentRow(rows);
  if (!u) {
    return {
      kind: 'new-uid',
      values: { generation: login.generation ?? 0, clientState: login.clientState, keysChangedAt: login.keysChangedAt ?? null },
    };
  }
  const a = login;
  const uGen = u.generation === 0 ? undefined : u.generation;
  const oldStates = new Set(rows.filter((r) => r !== u && r.clientState !== u.clientState).map((r) => r.clientState));

  if (gt(a.keysChangedAt, u.keysChangedAt) && gt(a.keysChangedAt, a.generation)) throw new TokenError('invalid-keysChangedAt');
  if (u.clientState !== '' && a.clientState === '') throw new TokenError('invalid-client-state', 'empty string');
  if (oldStates.has(a.clientState)) throw new TokenError('invalid-client-state', 'stale value');
  const newState = a.clientState !== u.clientState;
  if (newState && le(a.generation, uGen)) throw new TokenError('invalid-client-state', 'new value with no generation change');
  if (newState && le(a.keysChangedAt, u.keysChangedAt)) throw new TokenError('invalid-client-state', 'new value with no keys_changed_at change');
  if (gt(uGen, a.generation)) throw new TokenError('invalid-generation');
  if (gt(u.keysChangedAt, a.keysChangedAt)) throw new TokenError('invalid-keysChangedAt');
  if (a.keysChangedAt === undefined && u.keysChangedAt !== null && u.keysChangedAt !== 0) throw new TokenError('invalid-keysChangedAt');

  const keysChangedAt = a.keysChangedAt ?? u.keysChangedAt;
  let generation = u.generation;
  if (a.generation !== undefined) generation = Math.max(a.generation, u.generation);
  else if ((u.keysChangedAt === null || gt(a.keysChangedAt, u.keysChangedAt)) && gt(a.keysChangedAt, u.generation)) {
    generation = a.keysChangedAt as number;
  }

  if (newState) {
    // A new sync key: the client starts over on empty storage under a new uid, on the same node.
    return { kind: 'new-uid', values: { generation, clientState: a.clientState, keysChangedAt }, node: u.node };
  }
  if (u.revokedAt !== undefined) throw new TokenError('invalid-credentials', 'the key of this account was reset');
  if (u.replacedAt !== undefined || !nodeUsable(u.node)) {
    // The operator moved this user off a node: same values, a new uid on a fresh node.
    return { kind: 'new-uid', values: { generation, clientState: u.clientState, keysChangedAt } };
  }
  const changed = generation !== u.generation || keysChangedAt !== u.keysChangedAt;
  return { kind: 'use', row: changed ? { ...u, generation, keysChangedAt } : u, changed };
}

/** The rows after a decision: the new row added and every older unreplaced row marked replaced. */
export function applyDecision(rows: readonly UserRow[], decision: Decision, fresh: UserRow | undefined, now: number): UserRow[] {
  if (decision.kind === 'use') {
    return rows.map((r) => (r.uid === decision.row.uid ? decision.row : r));
  }
  if (!fresh) throw new Error('a new-uid decision needs the new row');
  return [...rows.map((r) => (r.replacedAt === undefined ? { ...r, replacedAt: now } : r)), fresh];
}
