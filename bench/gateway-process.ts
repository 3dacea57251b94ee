// A gateway for the benchmark: `syncgate serve` as a process of its own, on a free port, its
// log to /dev/null (it still formats and writes every line, but the load generator does not
// spend its CPU reading them).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/couch.js';

export interface BenchGateway {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

export async function spawnBenchGateway(env: Record<string, string>): Promise<BenchGateway> {
  const port = await freePort();
  // BENCH_GATEWAY_NODE_ARGS: node flags for the gateway, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const nodeArgs = process.env.BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, fileURLToPath(new URL('../bin/syncgate.js', import.meta.url)), 'serve'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}`);
    if (await fetch(`${url}/__lbheartbeat__`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('the gateway did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
    },
  };
}
