// Run as `unshare -n node netns-host.js <dir> <env JSON> <ports…>`: a network namespace with only
// loopback, in which a gateway listens and Firefox (started into the same namespace with
// nsenter) reaches it, so that nothing Firefox sends can leave the machine. TCP does not cross
// namespaces but Unix sockets do: each port named on the command line (Marionette's) and the
// gateway's own are forwarded from `<dir>/<port>.sock`, which the test process connects to.
import { execFileSync } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer } from '../../server/server.js';
import { startPouchServer } from './couch.js';

const [dir, envJson, ...ports] = process.argv.slice(2) as [string, string, ...string[]];
execFileSync('ip', ['link', 'set', 'lo', 'up']);

const env = JSON.parse(envJson) as Record<string, string>;
// A gateway on Couch: the pouchdb-server runs in here too, where the gateway can reach it.
const couch = env.SYNCGATE_TEST_NETNS_COUCH === '1' ? await startPouchServer() : undefined;
// A person's own Couch (test/firefox/own-couch.test.ts): another one, reachable from in here.
const ownCouch = env.SYNCGATE_TEST_NETNS_OWN_COUCH === '1' ? await startPouchServer() : undefined;
// Couch nodes for the gateway to place users on (test/browser/dashboard.test.ts): the test adds
// them through the admin API and kills one by its process id (pids cross the namespace).
const nodes = await Promise.all(Array.from({ length: Number(env.SYNCGATE_TEST_NETNS_NODES ?? 0) }, () => startPouchServer()));
const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', ...env, ...(couch ? { COUCH_URL: couch.url } : {}) });
// Logs to stderr: stdout carries the one line that tells the test where things are.
const server = await startServer(config, pino({ level: process.env.SYNCGATE_TEST_LOG ?? 'silent' }, pino.destination(2)));
const gatewayPort = Number(new URL(server.url).port);

function forward(port: number): Promise<string> {
  const path = join(dir, `${port}.sock`);
  const relay = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  return new Promise((resolve) => relay.listen(path, () => resolve(path)));
}

const sockets: Record<string, string> = { gateway: await forward(gatewayPort) };
for (const p of ports) sockets[p] = await forward(Number(p));
const nodesOut = nodes.map((n) => ({ url: n.url, pid: n.pid }));
process.stdout.write(`${JSON.stringify({ url: server.url, sockets, ...(ownCouch ? { ownCouch: ownCouch.url } : {}), ...(nodes.length ? { nodes: nodesOut } : {}) })}\n`);

const stop = async () => {
  await server.close().catch(() => undefined);
  await couch?.stop().catch(() => undefined);
  await ownCouch?.stop().catch(() => undefined);
  for (const n of nodes) await n.stop().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
