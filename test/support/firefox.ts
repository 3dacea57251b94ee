// A real Firefox for the tests: Debian's firefox-esr, headless, a fresh profile per instance,
// inside a network namespace that has only loopback (with the gateway it talks to), driven over
// Marionette. Its profile points every service Firefox would reach on the internet at nothing,
// and the namespace stops whatever a preference misses.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Marionette } from './marionette.js';

/** The Firefox binary, or why the Firefox tests cannot run here. */
export function firefoxBinary(): { path: string } | { missing: string } {
  for (const name of ['firefox-esr', 'firefox']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) {
      const root = spawnSync('unshare', ['-n', 'true']);
      if (root.status !== 0) return { missing: 'unshare -n failed: the Firefox tests need root (or CAP_SYS_ADMIN) for a network namespace with only loopback' };
      return { path: found.stdout.trim() };
    }
  }
  return { missing: 'Firefox is not installed: apt-get install firefox-esr (Debian 12: 153 ESR), then run the tests again' };
}

const MARIONETTE_BASE = 2828;

/** The namespace, its gateway, and the Unix sockets that reach into it. */
export class Netns {
  private constructor(
    private readonly host: ChildProcess,
    readonly dir: string,
    /** The gateway's URL, as Firefox inside the namespace reaches it. */
    readonly url: string,
    readonly sockets: Record<string, string>,
    /** A second Couch in the namespace (SYNCGATE_TEST_NETNS_OWN_COUCH=1), as the gateway reaches it. */
    readonly ownCouch?: string,
    /** Couch nodes in the namespace (SYNCGATE_TEST_NETNS_NODES=n): URL as the gateway reaches it, process id. */
    readonly nodes: Array<{ url: string; pid: number }> = [],
  ) {}

  /** Starts the namespace with a gateway configured by `env`, and room for `browsers` Firefoxes. */
  static async start(env: Record<string, string>, browsers = 2): Promise<Netns> {
    const dir = await mkdtemp(join(tmpdir(), 'syncgate-netns-'));
    const script = fileURLToPath(new URL('./netns-host.js', import.meta.url));
    const ports = Array.from({ length: browsers }, (_, i) => String(MARIONETTE_BASE + i));
    const host = spawn('unshare', ['-n', process.execPath, script, dir, JSON.stringify({ SYNCGATE_DATA: join(dir, 'data'), SYNC_MASTER_SECRET: 'f'.repeat(48), ...env }), ...ports], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: host.stdout as NodeJS.ReadableStream });
      rl.once('line', resolve);
      host.once('exit', (code) => reject(new Error(`the namespace's gateway exited with ${code}`)));
    });
    const { url, sockets, ownCouch, nodes } = JSON.parse(line) as { url: string; sockets: Record<string, string>; ownCouch?: string; nodes?: Array<{ url: string; pid: number }> };
    return new Netns(host, dir, url, sockets, ownCouch, nodes);
  }

  get pid(): number {
    return this.host.pid as number;
  }

  /** A request to the gateway in the namespace (through its socket), as if at its URL. */
  request(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          socketPath: this.sockets.gateway,
          path,
          method,
          headers: { Host: new URL(this.url).host, ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }), ...opts.headers },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              // not JSON: the text
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async stop(): Promise<void> {
    if (this.host.exitCode === null) {
      this.host.kill('SIGTERM');
      await new Promise((r) => this.host.once('exit', r));
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Preferences of a profile that reaches nothing but the gateway. */
function userJs(gateway: string, marionettePort: number): string {
  const prefs: Record<string, string | number | boolean> = {
    'identity.fxaccounts.autoconfig.uri': gateway,
    'identity.fxaccounts.allowHttp': true,
    'marionette.port': marionettePort,
    'services.sync.log.appender.file.logOnSuccess': true,
    'services.sync.log.logger.engine': 'Debug',
    'browser.startup.page': 0,
    'browser.startup.homepage': 'about:blank',
    'browser.startup.homepage_override.mstone': 'ignore',
    'startup.homepage_welcome_url': 'about:blank',
    'startup.homepage_welcome_url.additional': '',
    'browser.aboutwelcome.enabled': false,
    'browser.shell.checkDefaultBrowser': false,
    'browser.newtabpage.enabled': false,
    'browser.newtabpage.activity-stream.feeds.system.topstories': false,
    'browser.newtabpage.activity-stream.feeds.section.topstories': false,
    'browser.newtabpage.activity-stream.feeds.snippets': false,
    'browser.newtabpage.activity-stream.telemetry': false,
    'browser.tabs.warnOnClose': false,
    'app.update.enabled': false,
    'app.update.auto': false,
    'app.update.url': '',
    'app.normandy.enabled': false,
    'app.normandy.api_url': '',
    'app.shield.optoutstudies.enabled': false,
    'messaging-system.rsexperimentloader.enabled': false,
    'nimbus.enabled': false,
    'datareporting.healthreport.uploadEnabled': false,
    'datareporting.policy.dataSubmissionEnabled': false,
    'datareporting.policy.dataSubmissionPolicyBypassNotification': true,
    'toolkit.telemetry.enabled': false,
    'toolkit.telemetry.unified': false,
    'toolkit.telemetry.server': '',
    'browser.ping-centre.telemetry': false,
    'services.settings.server': 'http://127.0.0.1:9/v1',
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'network.trr.mode': 5,
    'network.dns.disablePrefetch': true,
    'network.prefetch-next': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'browser.safebrowsing.downloads.enabled': false,
    'browser.safebrowsing.provider.mozilla.updateURL': '',
    'browser.safebrowsing.provider.google4.updateURL': '',
    'extensions.update.enabled': false,
    'extensions.blocklist.enabled': false,
    'extensions.getAddons.cache.enabled': false,
    'extensions.systemAddon.update.enabled': false,
    'browser.search.geoip.url': '',
    'browser.search.update': false,
    'browser.region.network.url': '',
    'browser.region.update.enabled': false,
    'geo.provider.network.url': '',
    'geo.enabled': false,
    'media.gmp-manager.url': '',
    'media.gmp-gmpopenh264.enabled': false,
    'security.OCSP.enabled': 0,
    'security.remote_settings.crlite_filters.enabled': false,
    'security.remote_settings.intermediates.enabled': false,
    'dom.push.connection.enabled': false,
    'dom.push.serverURL': 'ws://127.0.0.1:9/',
    'browser.contentblocking.report.lockwise.enabled': false,
    'signon.management.page.breach-alerts.enabled': false,
    'privacy.resistFingerprinting': false,
    'toolkit.startup.max_resumed_crashes': -1,
  };
  return Object.entries(prefs)
    .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`)
    .join('\n');
}

export class Firefox {
  private constructor(
    private readonly process: ChildProcess,
    private readonly profile: string,
    readonly marionette: Marionette,
  ) {}

  /** Starts Firefox number `index` (0, 1, …) of the namespace, with a fresh profile. */
  static async start(binary: string, ns: Netns, index: number): Promise<Firefox> {
    const profile = await mkdtemp(join(tmpdir(), 'syncgate-firefox-'));
    const port = MARIONETTE_BASE + index;
    await writeFile(join(profile, 'user.js'), userJs(ns.url, port));
    const proc = spawn('nsenter', [`--net=/proc/${ns.pid}/ns/net`, '--', binary, '--headless', '--marionette', '-remote-allow-system-access', '--no-remote', '--profile', profile], {
      env: { ...process.env, MOZ_HEADLESS: '1', MOZ_CRASHREPORTER_DISABLE: '1' },
      stdio: 'ignore',
    });
    const socket = ns.sockets[String(port)];
    if (!socket) throw new Error(`no socket for Marionette port ${port}`);
    return new Firefox(proc, profile, await Marionette.connect({ path: socket }, 90_000));
  }

  /** Runs `body` (an async function body) in the chrome context; it returns JSON. */
  async chrome<T = unknown>(body: string, args: unknown[] = [], timeoutMs = 60_000): Promise<T> {
    await this.marionette.setContext('chrome');
    const script = `const done = arguments[arguments.length - 1]; (async (...args) => { ${body} })(...Array.from(arguments).slice(0, -1)).then((v) => done({ ok: v }), (e) => done({ error: String(e) + (e && e.stack ? ' at ' + e.stack : '') }));`;
    const r = await this.marionette.executeAsync<{ ok?: T; error?: string }>(script, args, timeoutMs);
    if (r.error !== undefined) throw new Error(`chrome script: ${r.error}`);
    return r.ok as T;
  }

  async stop(): Promise<void> {
    await this.marionette.quit();
    if (this.process.exitCode === null) {
      const exited = new Promise((r) => this.process.once('exit', r));
      setTimeout(() => this.process.kill('SIGKILL'), 10_000).unref();
      await exited;
    }
    await rm(this.profile, { recursive: true, force: true });
  }
}
