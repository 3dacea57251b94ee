// A gateway as a separate process, for tests that kill it hard (SIGKILL) mid-request.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { storeUnderTest, testCouchUrl } from './couch.js';
import { reportUnhandled } from './unhandled.js';

const BIN = fileURLToPath(new URL('../../bin/syncgate.js', import.meta.url));

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `syncgate serve` with the test run's store: the shared test Couch in a Couch run. */
export async function spawnGateway(env: Record<string, string>): Promise<GatewayProcess> {
  const { COUCH_URL: _inherited, ...inherited } = process.env;
  const couch = storeUnderTest === 'couch' ? { COUCH_URL: await testCouchUrl() } : {};
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...inherited, HOST: '127.0.0.1', LOG_LEVEL: 'info', SYNCGATE_WRITE_LEASE_MS: '1000', ...couch, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += String(d)));
  watchForUnhandled(child);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += String(d);
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m?.[1]) {
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${stderr}`)));
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url,
    child,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** A gateway that logs an unhandled rejection fails the test run (test/support/unhandled.ts). */
function watchForUnhandled(child: ChildProcess): void {
  let partial = '';
  child.stdout?.on('data', (d: Buffer) => {
    const lines = (partial + String(d)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.includes('"msg":"unhandled rejection"')) reportUnhandled(`gateway pid ${child.pid}: ${line}`);
  });
}
