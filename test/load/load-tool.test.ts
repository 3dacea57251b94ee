// syncgate load: both session mixes against a real gateway over HTTP, the figures it reports
// checked against the gateway's own request log, the arrival-rate mode's schedule, and the
// report files of the command line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { REPORT_SECTIONS } from '../../load/report-html.js';
import type { LoadResult } from '../../load/result.js';
import { LoadRun, type LoadOptions } from '../../load/run.js';
import { startGateway, type TestGateway } from '../support/gateway.js';
import { scrape } from '../support/scrape.js';

const ADMIN = 'load-test-admin-token-0123456789';
/** The gateway's route label of a request kind the tool reports ('POST storage/<coll>?batch=true'). */
function routeOf(kind: string): { route: string; method: string } {
  const [method, path = ''] = kind.split(' ') as [string, string?];
  if (path.startsWith('info/')) return { route: path, method };
  if (path === 'storage') return { route: 'storage', method };
  return { route: /^storage\/<coll>/.test(path) ? 'collection' : 'item', method };
}

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));

/** Counts the gateway's request-log lines (one per request it served), and keeps them. */
function logCounter(): { stream: PassThrough; count(): number; lines: string[] } {
  const stream = new PassThrough();
  let buffered = '';
  const kept: string[] = [];
  stream.on('data', (d: Buffer) => {
    buffered += String(d);
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) if (line.includes('"msg":"request"')) kept.push(line);
  });
  return { stream, count: () => kept.length, lines: kept };
}

/** Requests per `METHOD route` in request-log lines. */
function perRoute(lines: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of lines) {
    const { method, route } = JSON.parse(l) as { method: string; route: string };
    counts[`${method} ${route}`] = (counts[`${method} ${route}`] ?? 0) + 1;
  }
  return counts;
}

describe('syncgate load', function () {
  this.timeout(120_000);
  let gw: TestGateway;
  let log: ReturnType<typeof logCounter>;
  beforeEach(async () => {
    log = logCounter();
    gw = await startGateway({ SYNCGATE_ADMIN_TOKEN: ADMIN }, undefined, { log: log.stream });
  });
  afterEach(() => gw.close());

  const options = (o: Partial<LoadOptions>): LoadOptions => ({
    url: gw.url,
    auth: { kind: 'secret', secret: gw.secret },
    mix: 'realistic',
    users: 10,
    devices: 2,
    concurrency: 4,
    seconds: 3,
    warmup: true,
    seed: 1,
    pids: [process.pid],
    timeoutMs: 30_000,
    maxInflight: 1000,
    ...o,
  });

  it("Mozilla's mix: every request kind of its scenario, none failed, and as many requests as the gateway logged and counted on /__metrics__ (by route, method and status)", async () => {
    const r = await new LoadRun(options({ mix: 'mozilla', warmup: false, seconds: 4 })).run();
    assert.ok(r.sessions.count > 0, 'sessions ran');
    assert.equal(r.requests.errors, 0, JSON.stringify(r.sessions.abortReasons));
    assert.equal(r.sessions.aborted, 0);
    const kinds = r.kinds.map((k) => k.kind);
    for (const k of ['GET info/configuration', 'GET info/collections', 'GET storage/meta/global', 'PUT storage/meta/global', 'POST storage/<coll>']) assert.ok(kinds.includes(k), `${k} in ${kinds}`);
    // Every session starts with info/configuration and info/collections, one each.
    assert.equal(r.kinds.find((k) => k.kind === 'GET info/configuration')!.count, r.sessions.count);
    assert.equal(r.kinds.find((k) => k.kind === 'GET info/collections')!.count, r.sessions.count);
    // No warm-up and tokens minted locally: each request the tool counted is one the gateway served.
    await new Promise((res) => setTimeout(res, 300)); // the log is written asynchronously
    assert.equal(log.count(), r.requests.count);
    assert.equal(r.kinds.reduce((s, k) => s + k.count, 0), r.requests.count);
    // The gateway's own counters say the same, request for request and status for status.
    const m = await scrape(gw.url, ADMIN);
    assert.equal(m.value('syncgate_http_requests_total') - m.value('syncgate_http_requests_total', { route: 'metrics' }), r.requests.count);
    const byRoute = new Map<string, number>();
    for (const k of r.kinds) {
      const { route, method } = routeOf(k.kind);
      for (const [status, n] of Object.entries(k.statuses)) byRoute.set(`${route} ${method} ${status}`, (byRoute.get(`${route} ${method} ${status}`) ?? 0) + n);
    }
    assert.ok(byRoute.size >= 5, [...byRoute.keys()].join(', '));
    for (const [key, n] of byRoute) {
      const [route, method, status] = key.split(' ') as [string, string, string];
      assert.equal(m.value('syncgate_http_requests_total', { route, method, status }), n, key);
    }
  });

  it('the realistic mix: first syncs, then most sessions end at a 304 on info/collections', async () => {
    const r = await new LoadRun(options({ users: 20, seconds: 4 })).run();
    assert.equal(r.warmup.sessions, 40, 'every device of every user synced first');
    assert.equal(r.warmup.errors, 0, JSON.stringify(r.warmup.reasons));
    assert.equal(r.requests.errors, 0, JSON.stringify(r.sessions.abortReasons));
    const info = r.kinds.find((k) => k.kind === 'GET info/collections')!;
    assert.equal(info.count, r.sessions.count, 'one info/collections per session');
    assert.ok((info.statuses['304'] ?? 0) > info.count / 2, `304s: ${JSON.stringify(info.statuses)}`);
    // What one device uploaded, another downloaded: listings and uploads both happen.
    assert.ok(r.kinds.some((k) => k.kind === 'GET storage/<coll>?full&newer' && k.count > 0));
    assert.ok(r.kinds.some((k) => k.kind === 'POST storage/<coll>' && k.count > 0));
    assert.ok(r.server && r.server.cpuSeconds > 0 && r.server.peakRssBytes > 0, 'the server process was read');
  });

  it('the arrival-rate mode starts sessions on schedule, within 5% of the rate, on an idle server', async () => {
    const rate = 40;
    const r = await new LoadRun(options({ rates: [rate], seconds: 5 })).run();
    const started = r.timeline.reduce((s, t) => s + t.started, 0);
    assert.ok(Math.abs(started / 5 - rate) <= rate * 0.05, `started ${started} in 5 s`);
    assert.ok(Math.abs(r.sessions.perSecond - rate) <= rate * 0.05, `${r.sessions.perSecond} sessions/s`);
    assert.equal(r.requests.errors, 0);
    assert.deepEqual(r.mode, { kind: 'rate', sessionsPerSecond: rate });
  });

  it('a sweep of arrival rates gives the overload curve: offered against served, p99 and shed share', async () => {
    const r = await new LoadRun(options({ rates: [10, 20], seconds: 2 })).run();
    assert.equal(r.curve?.length, 2);
    assert.deepEqual(r.curve!.map((p) => p.offered), [10, 20]);
    for (const p of r.curve!) {
      assert.ok(Math.abs(p.served - p.offered) <= p.offered * 0.1, `served ${p.served} of ${p.offered}`);
      assert.ok(p.p99 > 0);
      assert.equal(p.shedShare, 0);
    }
  });

  it("replay: a recorded request log sent again to another gateway, request for request, at its pace", async () => {
    // Record: both mixes against this gateway (uploads, batches, conditional reads, deletes).
    await new LoadRun(options({ mix: 'mozilla', warmup: false, seconds: 2 })).run();
    await new LoadRun(options({ users: 6, seconds: 2 })).run();
    await new Promise((res) => setTimeout(res, 300)); // the log is written asynchronously
    const recorded = log.lines;
    const posts = recorded.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.method === 'POST');
    assert.ok(posts.length > 0 && posts.every((l) => typeof l.collection === 'string' && (l.records as number) > 0 && (l.bytes as number) > 0), 'a POST logs its collection, records and bytes');
    assert.ok(posts.some((l) => l.batch === 'open') && posts.some((l) => l.batch === 'commit'), 'batch steps are logged');
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-replay-'));
    const otherLog = logCounter();
    const other = await startGateway({}, undefined, { log: otherLog.stream });
    try {
      await writeFile(join(dir, 'requests.log'), `${recorded.join('\n')}\n{"msg":"something else"}\n`);
      const span = (JSON.parse(recorded[recorded.length - 1]!).time as number) - (JSON.parse(recorded[0]!).time as number);
      const started = Date.now();
      const out = await run(process.execPath, [BIN, 'load', '--replay', join(dir, 'requests.log'), '--speed', '2', '--url', other.url, '--secret', other.secret, '--out', join(dir, 'replay.json')]);
      const took = Date.now() - started;
      assert.match(out.stdout, /a recorded log replayed at 2x its pace/);
      const r = JSON.parse(await readFile(join(dir, 'replay.json'), 'utf8')) as LoadResult;
      assert.equal(r.mix, 'replay');
      assert.equal(r.requests.errors, 0, JSON.stringify(r.sessions.abortReasons));
      // Request for request: every logged storage request once, and the other gateway served each.
      const want = perRoute(recorded);
      const got = Object.fromEntries(r.kinds.map((k) => [k.kind, k.count]));
      assert.deepEqual(got, want);
      await new Promise((res) => setTimeout(res, 300));
      assert.deepEqual(perRoute(otherLog.lines), want);
      // The same shapes: conditional reads still end at 304, batches are opened and committed.
      const statuses = (kind: string) => r.kinds.find((k) => k.kind === kind)?.statuses ?? {};
      const conditional = recorded.filter((l) => l.includes('"route":"info/collections"') && l.includes('"cond":"ims"')).length;
      assert.ok((statuses('GET info/collections')['304'] ?? 0) > 0, `replayed ${JSON.stringify(statuses('GET info/collections'))}, ${conditional} conditional ones recorded`);
      assert.ok((statuses('POST collection')['202'] ?? 0) > 0, JSON.stringify(statuses('POST collection')));
      // At its pace: spread over the recorded span (halved), not sent all at once.
      assert.ok(took >= span / 2, `replayed in ${took} ms a log of ${span} ms at 2x`);
    } finally {
      await other.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the command line: a run written as JSON and HTML, then two runs in one report, side by side', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-load-'));
    try {
      const common = ['load', '--url', gw.url, '--secret', gw.secret, '--users', '5', '--duration', '2', '--concurrency', '2', '--pid', String(process.pid)];
      const a = await run(process.execPath, [BIN, ...common, '--label', 'first', '--out', join(dir, 'a.json'), '--html', join(dir, 'a.html')]);
      assert.match(a.stdout, /^first: realistic mix, 5 users × 2 devices, closed loop, 2 at once, 2 s, seed 1$/m);
      assert.match(a.stdout, /^GET info\/collections\s+\d+/m);
      assert.match(a.stdout, /^server \(pid \d+\): .* ms per session, peak RSS \d+ MB/m);
      await run(process.execPath, [BIN, ...common, '--mix', 'mozilla', '--label', 'second', '--out', join(dir, 'b.json')]);
      const html = await readFile(join(dir, 'a.html'), 'utf8');
      for (const id of REPORT_SECTIONS) assert.match(html, new RegExp(`<section id="${id}">`), id);
      assert.match(html, /<svg /);

      const both = await run(process.execPath, [BIN, 'load', 'report', join(dir, 'a.json'), join(dir, 'b.json'), '-o', join(dir, 'ab.html')]);
      assert.match(both.stdout, /^sessions\/s\s+[\d.]+\s+[\d.]+\s+[\d.]+$/m);
      const ab = await readFile(join(dir, 'ab.html'), 'utf8');
      for (const id of REPORT_SECTIONS) assert.match(ab, new RegExp(`<section id="${id}">`), id);
      assert.match(ab, />first</);
      assert.match(ab, />second</);
      const saved = JSON.parse(await readFile(join(dir, 'a.json'), 'utf8')) as LoadResult;
      assert.equal(saved.tool, 'syncgate load');
      assert.ok(saved.kinds.every((k) => k.histogram.reduce((s, [, c]) => s + c, 0) === k.count), 'each kind keeps its histogram');

      // Bad input: a clear message, exit status 2.
      await assert.rejects(run(process.execPath, [BIN, 'load', '--url', gw.url]), (e: { code: number; stderr: string }) => e.code === 2 && /give --secret/.test(e.stderr));
      await assert.rejects(run(process.execPath, [BIN, 'load', 'report', join(dir, 'missing.json'), '-o', join(dir, 'x.html')]), (e: { code: number; stderr: string }) => e.code === 2 && /cannot read/.test(e.stderr));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
