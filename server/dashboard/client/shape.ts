// The data the page reads (server/dashboard/data.ts, DashboardData, as JSON). Kept apart from
// the server's types so the page is compiled with the DOM's and nothing of Node's.

export type NodeState = 'up' | 'failed' | 'downed' | 'draining' | 'evacuating' | 'merging';

export interface DashboardNode {
  name: string;
  operator: string | null;
  state: NodeState;
  users: number;
  capacity: number;
  health: 'ok' | 'suspect' | 'tripped' | 'unchecked';
  failures: number;
  own: boolean;
}

export interface Traffic {
  t: number[];
  requestsPerSec: number[];
  errorRate: number[];
  clientErrorRate: number[];
  p50Ms: number[];
  p99Ms: number[];
}

export interface DashboardEvent {
  at: number;
  kind: 'failover' | 'failback' | 'move' | 'move-rolled-back' | 'evacuated';
  node?: string;
  from?: string;
  to?: string;
  uid?: number;
}

export interface DashboardData {
  at: number;
  operators: Array<{ name: string; synchronous: boolean; nodes: number; users: number; capacity: number }> | null;
  nodes: DashboardNode[];
  replication: { queued: number; running: number; completed: number; failed: number; dropped: number; lagMs: { p50: number; p99: number; max: number; samples: number } } | null;
  traffic: Traffic | null;
  events: DashboardEvent[] | null;
  topUsers: Array<{ uid: number; node: string; records: number; bytes: number; requestsHour: number; requestsDay: number }> | null;
}
