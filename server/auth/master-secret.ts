// The secret shared with a tokenserver (SYNC_MASTER_SECRET). Without one in the configuration
// it is generated once and kept in the data folder, so tokens survive restarts.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';

export function loadMasterSecret(config: Config): string {
  return config.masterSecret ?? dataFolderSecret(config, 'master-secret');
}

/** A secret generated once into the data folder (mode 0600) and read from there afterwards. */
export function dataFolderSecret(config: Config, name: string): string {
  const file = join(config.dataDir, name);
  mkdirSync(config.dataDir, { recursive: true });
  try {
    // 'wx': two processes starting at once cannot both create it.
    writeFileSync(file, randomBytes(32).toString('hex'), { flag: 'wx', mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 16) throw new Error(`${file} holds no usable secret; delete it to generate a new one`);
  return secret;
}
