// What the dashboard shows, as one JSON document (GET /__admin__/dashboard/data): nodes and
// operators from the registry as this gateway sees it, this gateway's replication and health
// monitor, its last hour of traffic, the events every gateway logged, and the largest users.
// A part whose source fails (the registry out, say) is null; the rest is still answered, since
// an outage is when an operator looks.
import { nodeState, type NodeState } from '../../federation/node-state.js';
import type { TrafficPoint } from '../../common/traffic-history.js';
import type { EventDoc } from '../../federation/event-log.js';
import type { NodeDoc } from '../../federation/registry.js';
import type { ReplicationStats } from '../../federation/replicator.js';
import type { UserUsageRow } from '../../federation/usage.js';

/** One of the largest users, as per-user usage (federation/usage.ts) ranks them. */
export type TopUser = Pick<UserUsageRow, 'uid' | 'node' | 'records' | 'bytes' | 'requestsHour' | 'requestsDay'>;
export type TopUsers = (limit: number) => Promise<TopUser[]>;

export interface DashboardSources {
  nodes: () => NodeDoc[];
  operators: () => Promise<Array<{ name: string; synchronous: boolean }>>;
  events: (limit: number) => Promise<EventDoc[]>;
  replication?: () => ReplicationStats;
  /** This gateway's health monitor: each watched node's breaker. */
  health?: () => Record<string, { tripped: boolean; failures: number }>;
  traffic?: () => TrafficPoint[];
  topUsers?: TopUsers;
}


export interface DashboardNode {
  name: string;
  operator: string | null;
  state: NodeState;
  users: number;
  capacity: number;
  /** This gateway's checks: unchecked (its own store, or a node taken down by hand). */
  health: 'ok' | 'suspect' | 'tripped' | 'unchecked';
  failures: number;
  /** A person's own Couch. */
  own: boolean;
}

/** The last hour in 10-second steps, one array per field (the charts' data as they take it). */
export interface TrafficColumns {
  t: number[];
  requestsPerSec: number[];
  errorRate: number[];
  clientErrorRate: number[];
  p50Ms: number[];
  p99Ms: number[];
}

export interface DashboardData {
  at: number;
  operators: Array<{ name: string; synchronous: boolean; nodes: number; users: number; capacity: number }> | null;
  nodes: DashboardNode[];
  replication: ReplicationStats | null;
  traffic: TrafficColumns | null;
  events: Array<Omit<EventDoc, '_id' | '_rev' | 'type'>> | null;
  /** null: this gateway has no per-user usage to rank by. */
  topUsers: TopUser[] | null;
}

const EVENTS = 20;
const TOP_USERS = 10;

function columns(points: TrafficPoint[]): TrafficColumns {
  const c: TrafficColumns = { t: [], requestsPerSec: [], errorRate: [], clientErrorRate: [], p50Ms: [], p99Ms: [] };
  for (const p of points) for (const k of Object.keys(c) as Array<keyof TrafficColumns>) c[k].push(p[k]);
  return c;
}

const orNull = <T>(p: Promise<T>): Promise<T | null> => p.catch(() => null);

export async function dashboardData(src: DashboardSources): Promise<DashboardData> {
  const health = src.health?.() ?? {};
  const nodes: DashboardNode[] = src.nodes()
    .map((n) => {
      const b = health[n.name];
      return {
        name: n.name,
        operator: n.operator ?? null,
        state: nodeState(n),
        users: n.assigned ?? 0,
        capacity: n.capacity,
        health: !b ? 'unchecked' : b.tripped ? 'tripped' : b.failures > 0 ? 'suspect' : 'ok',
        failures: b?.failures ?? 0,
        own: n.owner !== undefined,
      } satisfies DashboardNode;
    })
    .sort((a, b) => (a.operator ?? '').localeCompare(b.operator ?? '') || a.name.localeCompare(b.name));
  const [operators, events, topUsers] = await Promise.all([
    orNull(src.operators()),
    orNull(src.events(EVENTS)),
    src.topUsers ? orNull(src.topUsers(TOP_USERS)) : Promise.resolve(null),
  ]);
  return {
    at: Date.now(),
    operators:
      operators?.map((o) => {
        const own = nodes.filter((n) => n.operator === o.name);
        return { name: o.name, synchronous: o.synchronous, nodes: own.length, users: sum(own.map((n) => n.users)), capacity: sum(own.map((n) => n.capacity)) };
      }) ?? null,
    nodes,
    replication: src.replication?.() ?? null,
    traffic: src.traffic ? columns(src.traffic()) : null,
    events: events?.map(({ _id: _i, _rev: _r, type: _t, ...e }) => e) ?? null,
    topUsers,
  };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
