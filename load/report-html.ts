// The HTML report of one run or of several side by side (`syncgate load report a.json b.json`):
// a summary, throughput and errors over time, latency percentiles per request kind, latency
// over time, the server's CPU and memory over time, and the overload curve of a sweep.
import type { LoadResult } from './result.js';
import { barChart, escapeHtml, lineChart } from './svg-chart.js';
import { describeMode, formatComparison } from './table.js';

export const REPORT_SECTIONS = ['summary', 'throughput', 'latency', 'latency-over-time', 'server', 'overload'] as const;

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function section(id: (typeof REPORT_SECTIONS)[number], title: string, body: string): string {
  return `<section id="${id}"><h2>${escapeHtml(title)}</h2>${body}</section>`;
}

export function renderReport(runs: LoadResult[]): string {
  const names = runs.map((r) => r.label);
  const summary =
    table(
      ['run', 'server', 'mix', 'users × devices', 'mode', 'seconds', 'sessions/s', 'session p50 ms', 'session p99 ms', 'requests/s', 'errors', 'shed', 'server CPU ms/session', 'peak RSS MB'],
      runs.map((r) => [
        r.label,
        r.url,
        r.mix,
        `${r.users} × ${r.devices}`,
        describeMode(r),
        String(r.seconds),
        r.sessions.perSecond.toFixed(1),
        ms(r.sessions.p50),
        ms(r.sessions.p99),
        r.requests.perSecond.toFixed(1),
        String(r.requests.errors),
        String(r.requests.shed),
        r.server ? r.server.cpuMsPerSession.toFixed(2) : '-',
        r.server ? (r.server.peakRssBytes / (1 << 20)).toFixed(0) : '-',
      ]),
    ) + (runs.length === 2 ? `<pre>${escapeHtml(formatComparison(runs[0]!, runs[1]!))}</pre>` : '');

  const throughput =
    lineChart('Sessions per second', 'seconds', 'sessions/s', runs.map((r) => ({ name: r.label, points: r.timeline.map((t) => [t.t, t.sessions] as [number, number]) }))) +
    lineChart('Requests per second', 'seconds', 'requests/s', runs.map((r) => ({ name: r.label, points: r.timeline.map((t) => [t.t, t.requests] as [number, number]) }))) +
    lineChart(
      'Errors and shed requests per second',
      'seconds',
      'requests/s',
      runs.flatMap((r) => [
        { name: `${r.label} errors`, points: r.timeline.map((t) => [t.t, t.errors] as [number, number]) },
        { name: `${r.label} shed`, points: r.timeline.map((t) => [t.t, t.shed] as [number, number]) },
      ]),
    );

  const kinds = [...new Set(runs.flatMap((r) => r.kinds.map((k) => k.kind)))];
  const kindOf = (r: LoadResult, kind: string) => r.kinds.find((k) => k.kind === kind);
  const latency =
    barChart(
      'p99 latency by request kind',
      'ms',
      kinds,
      runs.map((r) => ({ name: r.label, values: kinds.map((k) => kindOf(r, k)?.p99 ?? 0) })),
    ) +
    table(
      ['request', ...runs.flatMap((r) => [`${r.label} count`, 'per s', 'p50 ms', 'p95 ms', 'p99 ms', 'errors'])],
      kinds.map((k) => [
        k,
        ...runs.flatMap((r) => {
          const s = kindOf(r, k);
          return s ? [String(s.count), s.rate.toFixed(1), ms(s.p50), ms(s.p95), ms(s.p99), String(s.errors)] : ['-', '-', '-', '-', '-', '-'];
        }),
      ]),
    );

  const overTime = lineChart(
    'Request latency over time (p50 and p99 of each second)',
    'seconds',
    'ms',
    runs.flatMap((r) => [
      { name: `${r.label} p50`, points: r.timeline.map((t) => [t.t, t.p50] as [number, number]) },
      { name: `${r.label} p99`, points: r.timeline.map((t) => [t.t, t.p99] as [number, number]) },
    ]),
  );

  const withServer = runs.filter((r) => r.server);
  const server = withServer.length
    ? lineChart('Server CPU (cores)', 'seconds', 'cores', withServer.map((r) => ({ name: r.label, points: r.timeline.filter((t) => t.serverCores !== undefined).map((t) => [t.t, t.serverCores!] as [number, number]) }))) +
      lineChart('Server resident memory', 'seconds', 'MB', withServer.map((r) => ({ name: r.label, points: r.timeline.filter((t) => t.serverRssBytes !== undefined).map((t) => [t.t, t.serverRssBytes! / (1 << 20)] as [number, number]) })))
    : '<p>No server process was given (<code>--pid</code>): no CPU or memory figures.</p>';

  const withCurve = runs.filter((r) => r.curve?.length);
  const overload = withCurve.length
    ? lineChart('Served against offered sessions per second', 'offered sessions/s', 'served sessions/s', withCurve.map((r) => ({ name: r.label, points: r.curve!.map((p) => [p.offered, p.served] as [number, number]) }))) +
      lineChart('Session p99 against offered rate (all sessions, and those not shed)', 'offered sessions/s', 'ms', withCurve.flatMap((r) => [
        { name: `${r.label} all`, points: r.curve!.map((p) => [p.offered, p.p99] as [number, number]) },
        { name: `${r.label} admitted`, points: r.curve!.map((p) => [p.offered, p.admittedP99 ?? p.p99] as [number, number]) },
      ])) +
      lineChart('Shed share against offered rate', 'offered sessions/s', '% of sessions', withCurve.map((r) => ({ name: r.label, points: r.curve!.map((p) => [p.offered, p.shedShare * 100] as [number, number]) }))) +
      withCurve.map((r) => table([`${r.label}: offered/s`, 'served/s', 'p50 ms', 'p99 ms', 'admitted p99 ms', 'shed', 'asked to back off'], r.curve!.map((p) => [p.offered.toFixed(1), p.served.toFixed(1), ms(p.p50), ms(p.p99), ms(p.admittedP99 ?? p.p99), `${(p.shedShare * 100).toFixed(1)}%`, `${(p.backoffShare * 100).toFixed(1)}%`]))).join('')
    : '<p>Not a sweep of arrival rates (<code>--rate a,b,c</code>): no overload curve.</p>';

  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>syncgate load: ${escapeHtml(names.join(' vs '))}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}figcaption{font-weight:bold}pre{background:#f6f6f6;padding:1em}</style></head><body>
<h1>syncgate load: ${escapeHtml(names.join(' vs '))}</h1>
${section('summary', 'Summary', summary)}
${section('throughput', 'Throughput and errors over time', throughput)}
${section('latency', 'Latency percentiles per request kind', latency)}
${section('latency-over-time', 'Latency over time', overTime)}
${section('server', 'Server CPU and memory over time', server)}
${section('overload', 'Overload: offered rate against served rate, p99 and shed share', overload)}
</body></html>
`;
}
