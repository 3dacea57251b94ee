// One gateway's Prometheus metrics (prom-client), scraped at /__metrics__. Each gateway owns its
// own registry, so that gateways started in one process (tests, `syncgate load`) count apart.
// The lower floors (the Couch client, replication, node health, overload) are handed this
// object and count on it; values that are read rather than counted (queue lengths, node states)
// are gauges whose source is set by whoever knows it, and read only when scraped.
//
// Conventions: the `syncgate_` prefix, base units (seconds, bytes), `_total` counters, and no
// label that names a user: labels are routes, methods, statuses, nodes, outcomes and kinds,
// all from small fixed sets.
import client from 'prom-client';
import { TrafficHistory } from './traffic-history.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** How a call to Couch ended, as a label. */
export type CouchOutcome = 'ok' | 'client_error' | 'server_error' | 'unreachable';

type GaugeValue = number | Array<{ labels: Record<string, string>; value: number }>;
export type GaugeSource = () => GaugeValue | Promise<GaugeValue>;

export class Metrics {
  readonly registry = new client.Registry();
  /** The last hour in 10-second steps, for the dashboard's charts. */
  readonly traffic = new TrafficHistory();
  private readonly sources = new Map<string, GaugeSource>();

  readonly httpRequests = this.counter('syncgate_http_requests_total', 'HTTP requests answered, by route, method and status.', ['route', 'method', 'status']);
  readonly httpDuration = new client.Histogram({
    name: 'syncgate_http_request_duration_seconds',
    help: 'Time from a request arriving to its answer, by route and method.',
    labelNames: ['route', 'method'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly httpReceivedBytes = this.counter('syncgate_http_request_bytes_total', 'Request body bytes received, by route.', ['route']);
  readonly httpSentBytes = this.counter('syncgate_http_response_bytes_total', 'Response body bytes sent, by route.', ['route']);
  readonly errors = this.counter('syncgate_errors_total', 'Error answers by the API that gave them and the kind in its error catalog.', ['api', 'kind']);

  readonly couchRequests = this.counter('syncgate_couch_requests_total', 'Calls to Couch nodes, by node, method and outcome.', ['node', 'method', 'outcome']);
  readonly couchErrors = this.counter('syncgate_couch_errors_total', 'Calls to Couch nodes that failed (after retries), by node and outcome.', ['node', 'outcome']);
  readonly couchRetries = this.counter('syncgate_couch_retries_total', 'Reads to Couch nodes tried again after a network error, timeout or 5xx.', ['node']);
  readonly couchDuration = new client.Histogram({
    name: 'syncgate_couch_request_duration_seconds',
    help: 'Time of each call to a Couch node (each attempt), by node and method.',
    labelNames: ['node', 'method'],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly replicationsCompleted = this.counter('syncgate_replications_completed_total', 'Replications of a user database to its replica that completed.', []);
  readonly replicationsFailed = this.counter('syncgate_replications_failed_total', 'Replications of a user database to its replica that failed (retried later).', []);
  readonly replicationsDropped = this.counter('syncgate_replications_dropped_total', 'Replications not run because the replica was out or failback merges the source (failback copies those users).', []);
  readonly replicationLag = new client.Histogram({
    name: 'syncgate_replication_lag_seconds',
    help: 'Time from a write to its replication to the replica completing.',
    buckets: LAG_BUCKETS,
    registers: [this.registry],
  });

  readonly healthChecks = this.counter('syncgate_node_health_checks_total', 'Health checks of Couch nodes by this gateway, by node and outcome (ok, unreachable, timeout, error).', ['node', 'outcome']);
  readonly failovers = this.counter('syncgate_node_failovers_total', 'Nodes this gateway marked failed (their users served from replicas).', ['node']);
  readonly failbacks = this.counter('syncgate_node_failbacks_total', 'Failed nodes this gateway merged back and served again.', ['node']);
  readonly userMoves = this.counter('syncgate_user_moves_total', 'User moves this gateway finished, by outcome.', ['outcome']);

  readonly shed = this.counter('syncgate_requests_shed_total', 'Requests turned away with 503 and Retry-After because the gateway was overloaded.', []);
  readonly backoffAnswers = this.counter('syncgate_backoff_responses_total', 'Answers that carried X-Weave-Backoff.', []);

  readonly tokenRequests = this.counter('syncgate_token_requests_total', 'Token exchanges (GET /1.0/sync/1.5), by outcome.', ['outcome']);
  readonly signIns = this.counter('syncgate_sign_ins_total', 'Sign-ins to the accounts server (POST /v1/account/login), by outcome.', ['outcome']);

  readonly usageFlushes = this.counter('syncgate_usage_flushes_total', 'Flushes of per-user usage that wrote at least one usage document.', []);
  readonly usageUsersWritten = this.counter('syncgate_usage_users_written_total', 'Per-user usage documents written (one per user with requests since the last flush).', []);

  constructor() {
    this.gauge('syncgate_requests_in_flight', 'Requests running or waiting for their turn.', []);
    this.gauge('syncgate_requests_waiting', 'Requests waiting in the admission queue.', []);
    this.gauge('syncgate_open_user_databases', 'User databases this gateway holds open (state and record index in memory).', []);
    this.gauge('syncgate_replication_queue', 'User databases waiting to be replicated to their replica.', []);
    this.gauge('syncgate_replications_running', 'Replications running now.', []);
    this.gauge('syncgate_node_state', 'Each node\'s state as this gateway sees it: 1 for its current state, 0 for the others.', ['node', 'state']);
    this.gauge('syncgate_node_user_databases', 'User databases on each node, primaries and replicas (counted at placement).', ['node']);
    this.gauge('syncgate_node_capacity', 'Users each node may hold.', ['node']);
  }

  /** Sets where a gauge's value comes from; read at each scrape. */
  source(name: string, read: GaugeSource): void {
    this.sources.set(name, read);
  }

  /** The text a Prometheus server scrapes: this gateway's metrics and its process's. */
  scrape(): Promise<string> {
    return client.Registry.merge([this.registry, processRegistry()]).metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): client.Counter<L> {
    return new client.Counter({ name, help, labelNames, registers: [this.registry] });
  }

  private gauge(name: string, help: string, labelNames: string[]): void {
    const sources = this.sources;
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        const read = sources.get(name);
        this.reset();
        if (!read) return;
        const value = await read();
        if (typeof value === 'number') this.set(value);
        else for (const v of value) this.set(v.labels, v.value);
      },
    });
  }
}

let processMetrics: client.Registry | undefined;

/**
 * CPU, memory, event-loop delay and GC (prom-client's defaults) belong to the process, not to a
 * gateway, and their collectors cannot be stopped: one set per process, however many gateways
 * it starts and closes.
 */
function processRegistry(): client.Registry {
  if (!processMetrics) {
    processMetrics = new client.Registry();
    client.collectDefaultMetrics({ register: processMetrics, prefix: 'syncgate_' });
  }
  return processMetrics;
}

/** A Couch call's status as an outcome label: 0 is a node that did not answer in time. */
export function couchOutcome(status: number): CouchOutcome {
  if (status === 0) return 'unreachable';
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'client_error';
  return 'ok';
}
