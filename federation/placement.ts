// Where a new user goes: the primary on the active node with the most free capacity by
// weight, the replica on an active node of another operator when there is one (another node
// of the same operator otherwise). Pure, so the rules are tested without a registry.
import { createHash } from 'node:crypto';

export interface PlacementCandidate {
  name: string;
  operator: string;
  capacity: number;
  /** Users placed there now. */
  assigned: number;
  /** Relative share of new users; 0 takes none. */
  weight: number;
  /** Active: not downed, not draining, not failed by the health monitor. */
  active: boolean;
}

export interface Placement {
  primary: string;
  replica?: string;
}

const score = (n: PlacementCandidate): number => Math.max(0, n.capacity - n.assigned) * n.weight;

/**
 * Best first. Ties (common: a placement counts on both of its nodes) go by a hash of the
 * account and the node name, so equal nodes share the new users and every gateway decides
 * the same way for the same account.
 */
function ranked(nodes: readonly PlacementCandidate[], seed: string): PlacementCandidate[] {
  const tie = (n: PlacementCandidate) => createHash('sha256').update(`${seed}\n${n.name}`).digest().readUInt32BE(0);
  return nodes
    .filter((n) => n.active && n.weight > 0 && n.capacity > n.assigned)
    .sort((a, b) => score(b) - score(a) || tie(a) - tie(b) || (a.name < b.name ? -1 : 1));
}

/** undefined when no node can take a user. `seed` names the account being placed. */
export function place(nodes: readonly PlacementCandidate[], seed = ''): Placement | undefined {
  const order = ranked(nodes, seed);
  const primary = order[0];
  if (!primary) return undefined;
  const replica = order.find((n) => n.operator !== primary.operator) ?? order.find((n) => n.name !== primary.name);
  return replica ? { primary: primary.name, replica: replica.name } : { primary: primary.name };
}
