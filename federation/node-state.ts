// A node's one state, as the registry says it, for the metrics and the dashboard.
import type { NodeDoc } from './registry.js';

export const NODE_STATES = ['up', 'failed', 'downed', 'merging', 'evacuating', 'draining'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** The worst of what holds: an out node is out whatever else it is doing, then on its way back, then being emptied. */
export function nodeState(n: NodeDoc): NodeState {
  if (n.downed) return 'downed';
  if (n.failedAt !== undefined) return 'failed';
  if (n.needsMerge) return 'merging';
  if (n.evacuating) return 'evacuating';
  if (n.draining) return 'draining';
  return 'up';
}
