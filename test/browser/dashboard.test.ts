// The operator dashboard end to end, in Debian's Chromium (headless, in a network namespace
// with only loopback, with a gateway and two Couch nodes of two operators): nothing is
// readable without the admin credential; signed in, the page lists the nodes as up and draws
// the last hour's traffic; a node killed hard (SIGKILL) shows as failed without a reload, and
// its failover is in the recent events. Screenshots: test-results/dashboard.png (and the
// sign-in page, test-results/dashboard-sign-in.png).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
// @ts-expect-error the hawk package ships no types
import Hawk from 'hawk';
import type { Browser, Page } from 'playwright-core';
import { keyIdOf, LocalAccounts } from '../../server/tokenserver/local-accounts.js';
import { chromiumBinary, launchChromium } from '../support/chromium.js';
import { Netns } from '../support/firefox.js';

const ADMIN = randomBytes(24).toString('hex');
const SCREENSHOT = 'test-results/dashboard.png';

describe('operator dashboard in Chromium: sign-in, nodes, charts, a node killed', function () {
  this.timeout(180_000);
  let ns: Netns | undefined;
  let chromium: { browser: Browser; close(): Promise<void> } | undefined;
  let page: Page;

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await (ns as Netns).request(method, `/__admin__${path}`, { headers: { Authorization: `Bearer ${ADMIN}` }, ...(body === undefined ? {} : { body }) });
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const row = (node: string) => `#nodes tbody tr[data-node="${node}"]`;

  before(async function () {
    const found = chromiumBinary();
    if ('missing' in found) {
      console.log(`      skipped: ${found.missing}`);
      this.skip();
    }
    ns = await Netns.start(
      {
        SYNCGATE_TEST_NETNS_COUCH: '1',
        SYNCGATE_TEST_NETNS_NODES: '2',
        SYNCGATE_ADMIN_TOKEN: ADMIN,
        SYNCGATE_NODE_SECRET: randomBytes(24).toString('hex'),
        SYNCGATE_FXA: 'false',
        // Per-user usage written every second, for the top users table.
        SYNCGATE_USAGE_FLUSH_SEC: '1',
        // A node that stops answering is failed within about a second.
        SYNCGATE_HEALTH_INTERVAL_MS: '500',
        SYNCGATE_HEALTH_SUSPECT_INTERVAL_MS: '200',
        SYNCGATE_HEALTH_FAILURES: '2',
        SYNCGATE_HEALTH_TIMEOUT_MS: '500',
      },
      0,
    );
    assert.equal(ns.nodes.length, 2);
    await admin('POST', '/operators', { name: 'alpha' });
    await admin('POST', '/operators', { name: 'beta' });
    await admin('POST', '/nodes', { name: 'node-a', operator: 'alpha', url: ns.nodes[0]?.url, capacity: 1000 });
    await admin('POST', '/nodes', { name: 'node-b', operator: 'beta', url: ns.nodes[1]?.url, capacity: 500 });

    // Some Sync traffic: a token, then writes and reads signed with Hawk as Firefox signs them.
    const accounts = new LocalAccounts(join(ns.dir, 'data'));
    for (let n = 0; n < 3; n++) {
      const acct = await accounts.create(`dash-${n}-${randomBytes(3).toString('hex')}@example.com`);
      const token: { status: number; body: unknown } = await ns.request('GET', '/1.0/sync/1.5', { headers: { Authorization: `Bearer ${await accounts.bearer(acct, 3600)}`, 'X-KeyID': keyIdOf(acct) } });
      assert.equal(token.status, 200, JSON.stringify(token.body));
      const creds = token.body as { id: string; key: string; api_endpoint: string };
      const sync = (method: string, path: string, body?: unknown) => {
        const url = `${creds.api_endpoint}${path}`;
        const { header } = Hawk.client.header(url, method, { credentials: { id: creds.id, key: creds.key, algorithm: 'sha256' } });
        return (ns as Netns).request(method, new URL(url).pathname + new URL(url).search, { headers: { Authorization: header }, ...(body === undefined ? {} : { body }) });
      };
      // User n writes 2 + n records: the top users table has an order to show.
      for (let i = 0; i < 2 + n; i++) assert.equal((await sync('POST', '/storage/history', [{ id: `h${i}`, payload: `p${i}` }])).status, 200);
      assert.equal((await sync('GET', '/info/collections')).status, 200);
    }
    chromium = await launchChromium(found.path, ns);
    page = await chromium.browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  after(async () => {
    await chromium?.close();
    await ns?.stop();
  });

  it('answers nothing without the admin credential: 401 for data, the sign-in form for the page', async () => {
    const netns = ns as Netns;
    const data = await netns.request('GET', '/__admin__/dashboard/data');
    assert.equal(data.status, 401);
    assert.deepEqual(data.body, { error: 'sign in first' });
    const script = await netns.request('GET', '/__admin__/dashboard/dashboard.js');
    assert.equal(script.status, 401);
    const html = await netns.request('GET', '/__admin__/dashboard');
    assert.equal(html.status, 401);
    assert.match(html.body as string, /<form method="post" action="\/__admin__\/dashboard\/session">/);
    for (const secret of ['node-a', 'node-b', 'alpha', 'beta', '"nodes"']) assert.ok(!(html.body as string).includes(secret), `the sign-in page names ${secret}`);
    const wrong = await netns.request('POST', '/__admin__/dashboard/session', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: undefined });
    assert.equal(wrong.status, 401);
    // A forged or expired session is no session.
    const forged = await netns.request('GET', '/__admin__/dashboard/data', { headers: { Cookie: `syncgate_dashboard=${Date.now() + 3_600_000}.x.${'A'.repeat(43)}` } });
    assert.equal(forged.status, 401);
  });

  it('signs in with the admin token and lists the nodes as up', async () => {
    await page.goto(`${(ns as Netns).url}/__admin__/dashboard`);
    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-sign-in.png' });
    await page.fill('#token', 'not-the-token-at-all');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(await page.textContent('body') as string, /That is not the admin token/);
    await page.fill('#token', ADMIN);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    for (const node of ['node-a', 'node-b', 'default']) await page.waitForSelector(`${row(node)} [data-state="up"]`, { timeout: 15_000 });
    assert.equal(await page.textContent(`${row('node-a')} td:nth-child(2)`), 'alpha');
    assert.equal(await page.textContent(`${row('node-b')} td:nth-child(5)`), '500');
  });

  it('draws the request rate of the last hour with uPlot', async () => {
    await page.waitForFunction(() => Number(document.querySelector('#chart-rate')?.getAttribute('data-points') ?? 0) > 0, undefined, { timeout: 15_000 });
    const drawn = await page.evaluate(() => {
      const canvas = document.querySelector('#chart-rate canvas') as HTMLCanvasElement | null;
      if (!canvas) return 0;
      const pixels = (canvas.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if ((pixels[i] ?? 0) > 0) painted++;
      return painted;
    });
    assert.ok(drawn > 500, `the rate chart's canvas has ${drawn} painted pixels`);
    for (const id of ['chart-errors', 'chart-latency']) assert.ok(await page.$(`#${id} canvas`), `${id} has no canvas`);
  });

  it('lists the top users by data, largest first', async () => {
    await page.waitForFunction(() => document.querySelectorAll('#top-users tbody tr td.num').length >= 12, undefined, { timeout: 15_000 });
    const records = await page.$$eval('#top-users tbody tr', (rows) => rows.map((r) => r.querySelectorAll('td')[2]?.textContent));
    assert.deepEqual(records, ['4', '3', '2']);
  });

  it('does not honour the session cookie outside the dashboard', async () => {
    const cookie = (await page.context().cookies()).find((c) => c.name === 'syncgate_dashboard');
    assert.ok(cookie, 'no session cookie');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/__admin__');
    const netns = ns as Netns;
    const headers = { Cookie: `syncgate_dashboard=${cookie.value}` };
    assert.equal((await netns.request('GET', '/__admin__/dashboard/data', { headers })).status, 200);
    assert.equal((await netns.request('GET', '/__admin__/nodes', { headers })).status, 401);
    assert.equal((await netns.request('GET', '/1.5/1/info/collections', { headers })).status, 401);
  });

  it('shows a node killed hard as failed without a reload, and its failover among the events', async () => {
    const victim = (ns as Netns).nodes[1]?.pid as number;
    process.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    await page.waitForSelector(`${row('node-b')} [data-state="failed"]`, { timeout: 20_000 });
    console.log(`      node-b shown as failed ${Date.now() - killedAt} ms after SIGKILL`);
    await page.waitForSelector('#events tbody td.kind-failover', { timeout: 10_000 });
    assert.match(await page.textContent('#events tbody') as string, /node node-b failed/);
    assert.ok(await page.$(`${row('node-a')} [data-state="up"]`), 'node-a should stay up');
    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });
});
