// Debian's Chromium for the browser tests, headless, driven by playwright-core, inside the
// network namespace of a Netns (firefox.ts): playwright starts a small wrapper that enters the
// namespace and runs Chromium there; it talks to it over --remote-debugging-pipe (file
// descriptors, which cross namespaces), so the browser reaches nothing but loopback.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Netns } from './firefox.js';

export const CHROMIUM = '/usr/bin/chromium';

/** The Chromium binary, or why the Chromium tests cannot run here. */
export function chromiumBinary(): { path: string } | { missing: string } {
  if (!existsSync(CHROMIUM)) return { missing: `Chromium is not installed (${CHROMIUM}): apt-get install chromium, then run the tests again` };
  if (spawnSync('unshare', ['-n', 'true']).status !== 0) return { missing: 'unshare -n failed: the browser tests need root (or CAP_SYS_ADMIN) for a network namespace with only loopback' };
  return { path: CHROMIUM };
}

/** Flags that keep Chromium quiet: no GPU, no QUIC, none of its own calls home. */
const FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

/** Chromium in the namespace; `close()` ends it and removes its wrapper. */
export async function launchChromium(binary: string, ns: Netns): Promise<{ browser: Browser; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'syncgate-chromium-'));
  const wrapper = join(dir, 'chromium-in-netns');
  await writeFile(wrapper, `#!/bin/sh\nexec nsenter --net=/proc/${ns.pid}/ns/net -- ${binary} "$@"\n`);
  await chmod(wrapper, 0o755);
  // playwright adds --headless, --no-sandbox and a fresh --user-data-dir of its own.
  const browser = await chromium.launch({ executablePath: wrapper, headless: true, chromiumSandbox: false, args: FLAGS, timeout: 60_000 });
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
