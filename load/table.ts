// The run as text: the summary a terminal shows at the end, and the comparison of two runs.
import type { LoadResult } from './result.js';

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
export const megabytes = (b: number) => `${(b / (1 << 20)).toFixed(0)} MB`;

function columns(rows: string[][], right: boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (right[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

export function describeMode(r: LoadResult): string {
  if (r.mode.kind === 'replay') return `a recorded log replayed at ${r.mode.speed}x its pace`;
  return r.mode.kind === 'closed' ? `closed loop, ${r.mode.concurrency} at once` : `${r.mode.sessionsPerSecond} sessions/s offered`;
}

export function formatResult(r: LoadResult): string {
  const lines: string[] = [];
  lines.push(`${r.label}: ${r.mix} mix, ${r.users} users × ${r.devices} devices, ${describeMode(r)}, ${r.seconds} s, seed ${r.seed}`);
  const rows = [['request', 'count', 'per s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors', 'statuses']];
  for (const k of r.kinds) {
    rows.push([k.kind, String(k.count), k.rate.toFixed(1), ms(k.p50), ms(k.p95), ms(k.p99), String(k.errors), Object.entries(k.statuses).map(([s, n]) => `${s}×${n}`).join(' ')]);
  }
  const s = r.sessions;
  rows.push(['session', String(s.count), s.perSecond.toFixed(1), ms(s.p50), ms(s.p95), ms(s.p99), String(s.aborted), '']);
  lines.push(columns(rows, [false, true, true, true, true, true, true, false]));
  lines.push(`sessions/s ${s.perSecond.toFixed(1)}; requests/s ${r.requests.perSecond.toFixed(1)}; errors ${r.requests.errors}, shed ${r.requests.shed}, asked to back off ${r.requests.backoff}`);
  if (r.server) {
    lines.push(
      `server (pid ${r.server.pids.join(', ')}): ${r.server.cpuSeconds.toFixed(1)} CPU s (${r.server.coresUsed.toFixed(2)} cores), ${r.server.cpuMsPerSession.toFixed(2)} ms per session, peak RSS ${megabytes(r.server.peakRssBytes)}, ${megabytes(r.server.writtenBytes)} written`,
    );
  }
  for (const [reason, n] of Object.entries(s.abortReasons)) lines.push(`  aborted ×${n}: ${reason}`);
  if (r.curve) {
    lines.push(columns([['offered/s', 'served/s', 'p50 ms', 'p99 ms', 'admitted p99', 'shed', 'backoff'], ...r.curve.map((p) => [p.offered.toFixed(1), p.served.toFixed(1), ms(p.p50), ms(p.p99), ms(p.admittedP99 ?? p.p99), `${(p.shedShare * 100).toFixed(1)}%`, `${(p.backoffShare * 100).toFixed(1)}%`])], [true, true, true, true, true, true, true]));
  }
  return lines.join('\n');
}

/** Two runs side by side: sessions/s, latency, server cost, and the ratio a/b. */
export function formatComparison(a: LoadResult, b: LoadResult): string {
  const ratio = (x: number, y: number) => (y ? (x / y).toFixed(2) : '-');
  const rows = [['', a.label, b.label, `${a.label}/${b.label}`]];
  const add = (name: string, x: number | undefined, y: number | undefined, f: (v: number) => string) => {
    if (x === undefined || y === undefined) return;
    rows.push([name, f(x), f(y), ratio(x, y)]);
  };
  add('sessions/s', a.sessions.perSecond, b.sessions.perSecond, (v) => v.toFixed(1));
  add('session p50 ms', a.sessions.p50, b.sessions.p50, ms);
  add('session p99 ms', a.sessions.p99, b.sessions.p99, ms);
  add('requests/s', a.requests.perSecond, b.requests.perSecond, (v) => v.toFixed(1));
  add('errors', a.requests.errors, b.requests.errors, String);
  add('server CPU ms/session', a.server?.cpuMsPerSession, b.server?.cpuMsPerSession, (v) => v.toFixed(2));
  add('server cores used', a.server?.coresUsed, b.server?.coresUsed, (v) => v.toFixed(2));
  add('server peak RSS MB', a.server && a.server.peakRssBytes / (1 << 20), b.server && b.server.peakRssBytes / (1 << 20), (v) => v.toFixed(0));
  for (const k of a.kinds) {
    const o = b.kinds.find((x) => x.kind === k.kind);
    if (o) add(`${k.kind} p99 ms`, k.p99, o.p99, ms);
  }
  return columns(rows, [false, true, true, true]);
}
