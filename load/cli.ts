// `syncgate load`: the Sync session mix against any Sync 1.5 server; `syncgate load report`:
// the HTML report of one run or two side by side.
import { Command, InvalidArgumentError, Option } from 'commander';

const positiveInt = (v: string): number => {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(v);
};
const positiveNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
};
const rates = (v: string): number[] => {
  const list = v.split(',').map(Number);
  if (list.some((r) => !Number.isFinite(r) || r <= 0)) throw new InvalidArgumentError('must be positive numbers, comma-separated');
  return list;
};

interface RunOptions {
  url: string;
  secret?: string;
  tokenUrl?: string;
  bearer?: string;
  keyId?: string;
  mix: 'mozilla' | 'realistic';
  users: number;
  devices: number;
  concurrency: number;
  rate?: number[];
  duration: number;
  warmup: boolean;
  seed: number;
  pid: number[];
  timeout: number;
  maxInflight: number;
  label?: string;
  out?: string;
  html?: string;
  replay?: string;
  speed: number;
}

const fail = (message: string): never => {
  process.stderr.write(`syncgate load: ${message}\n`);
  process.exit(2);
};

export function loadCommand(): Command {
  const load = new Command('load').description('run the Sync session mix against a Sync 1.5 server and report what it measured');
  load
    .command('run', { isDefault: true })
    .description('run the load (the default: `syncgate load --url …`)')
    .requiredOption('--url <server>', 'the storage server, e.g. http://127.0.0.1:8000 (users are <url>/1.5/<uid>)')
    .option('--secret <secret>', "the server's tokenlib master secret: tokens are minted here")
    .option('--token-url <url>', 'a token server to exchange a bearer token at, e.g. http://127.0.0.1:8000/1.0/sync/1.5')
    .option('--bearer <token>', 'with --token-url: the OAuth bearer token ("{user}" is replaced by the user number)')
    .option('--key-id <kid>', 'with --token-url: the X-KeyID header ("{user}" as above)')
    .addOption(new Option('--mix <mix>', 'the session mix').choices(['realistic', 'mozilla']).default('realistic'))
    .option('--users <n>', 'synthetic users', positiveInt, 200)
    .option('--devices <n>', 'devices per user (realistic mix)', positiveInt, 2)
    .option('--concurrency <n>', 'closed loop: sessions at once', positiveInt, 16)
    .option('--rate <list>', 'fixed arrival rate(s) in sessions/s instead of the closed loop; several make a sweep', rates)
    .option('--duration <seconds>', 'the measured window (each step of a sweep)', positiveInt, 30)
    .option('--no-warmup', "skip every device's first sync before measuring")
    .option('--seed <n>', 'random seed: the same seed, the same requests', positiveInt, 1)
    .option('--pid <pid>', 'a server process to read CPU, memory and writes of (repeatable)', (v, prev: number[]) => [...prev, positiveInt(v)], [] as number[])
    .option('--timeout <ms>', 'a request unanswered after this long fails', positiveInt, 60_000)
    .option('--max-inflight <n>', 'arrival-rate mode: sessions in flight above which one is not sent', positiveInt, 5000)
    .option('--replay <request-log>', "instead of a mix: replay the storage requests of syncgate's request log (its JSON lines on stdout), users and timing as recorded")
    .option('--speed <x>', 'with --replay: this many times the recorded pace', positiveNumber, 1)
    .option('--label <name>', 'the run\'s name in reports (default: the server\'s host)')
    .option('--out <file.json>', 'write the whole result as JSON (for `syncgate load report`)')
    .option('--html <file.html>', 'write the HTML report of this run')
    .action(async (opts: RunOptions) => {
      let url: URL;
      try {
        url = new URL(opts.url);
      } catch {
        return fail(`--url is not a URL: ${opts.url}`);
      }
      const auth = opts.secret
        ? ({ kind: 'secret', secret: opts.secret } as const)
        : opts.tokenUrl && opts.bearer && opts.keyId
          ? ({ kind: 'token', tokenUrl: opts.tokenUrl, bearer: opts.bearer, keyId: opts.keyId } as const)
          : fail('give --secret, or --token-url with --bearer and --key-id');
      let replay: import('./run.js').LoadOptions['replay'];
      if (opts.replay) {
        const { readFile } = await import('node:fs/promises');
        const { parseRequestLog } = await import('./request-log.js');
        const log = parseRequestLog(await readFile(opts.replay, 'utf8').catch(() => fail(`cannot read ${opts.replay}`)));
        if (log.requests.length === 0) fail(`${opts.replay} has no storage request to replay (${log.skipped} other lines)`);
        replay = { log, speed: opts.speed };
        process.stderr.write(`replaying ${log.requests.length} requests of ${log.users} users over ${log.seconds.toFixed(0)} s at ${opts.speed}x (${log.skipped} other lines skipped)\n`);
      }
      const { LoadRun } = await import('./run.js');
      const { readable } = await import('./probe.js');
      const { formatResult } = await import('./table.js');
      if (opts.pid.length && !readable(opts.pid)) fail(`cannot read /proc of pid ${opts.pid.join(', ')}`);
      const tty = process.stderr.isTTY;
      let lastLine = 0;
      const result = await new LoadRun({
        url: url.href.replace(/\/$/, ''),
        auth,
        mix: opts.mix,
        users: opts.users,
        devices: opts.devices,
        concurrency: opts.concurrency,
        rates: opts.rate,
        seconds: opts.duration,
        warmup: opts.warmup,
        seed: opts.seed,
        pids: opts.pid,
        timeoutMs: opts.timeout,
        maxInflight: opts.maxInflight,
        label: opts.label,
        replay,
        progress: (line, final) => {
          // A terminal gets one line rewritten in place; a log gets a line every 10 s.
          if (tty) process.stderr.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
          else if (final || Date.now() - lastLine >= 10_000) {
            process.stderr.write(`${line}\n`);
            lastLine = Date.now();
          }
        },
      }).run();
      process.stdout.write(`${formatResult(result)}\n`);
      const { writeFile } = await import('node:fs/promises');
      if (opts.out) await writeFile(opts.out, JSON.stringify(result));
      if (opts.html) {
        const { renderReport } = await import('./report-html.js');
        await writeFile(opts.html, renderReport([result]));
      }
    });
  load
    .command('report <runs...>')
    .description('the HTML report of runs written with --out, side by side; prints their comparison')
    .requiredOption('-o, --output <file.html>', 'where to write the report')
    .action(async (files: string[], opts: { output: string }) => {
      const { readFile, writeFile } = await import('node:fs/promises');
      const { renderReport } = await import('./report-html.js');
      const { formatComparison, formatResult } = await import('./table.js');
      const runs = [];
      for (const f of files) {
        const r = JSON.parse(await readFile(f, 'utf8').catch(() => fail(`cannot read ${f}`))) as import('./result.js').LoadResult;
        if (r.tool !== 'syncgate load') fail(`${f} is not a syncgate load result`);
        runs.push(r);
      }
      await writeFile(opts.output, renderReport(runs));
      process.stdout.write(`${runs.length === 2 ? formatComparison(runs[0]!, runs[1]!) : runs.map(formatResult).join('\n\n')}\n`);
    });
  return load;
}
