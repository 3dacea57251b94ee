// The federation tests' admin API (bearer credential, JSON in and out, and any answer of 300
// or above fails the test with its status and body) and the environment of their gateways.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

export type AdminCall = (method: string, path: string, body?: unknown) => Promise<any>;

/** `gateway()` names the gateway to call at each call (tests replace killed gateways). */
export function adminApi(gateway: () => string | undefined, token: string): AdminCall {
  return async (method, path, body) => {
    const res = await fetch(`${gateway()}/__admin__${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
}

/**
 * A gateway of the federation tests: local accounts in `dir`, the registry on `registryUrl`,
 * secrets of this run shared by every gateway of the test; `extra` on top.
 */
export function federationEnv(dir: string, registryUrl: string, adminToken: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    SYNCGATE_DATA: dir,
    PORT: '0',
    COUCH_URL: registryUrl,
    SYNCGATE_ADMIN_TOKEN: adminToken,
    SYNC_MASTER_SECRET: secretOf(dir, 'master'),
    SYNCGATE_NODE_SECRET: secretOf(dir, 'node'),
    SYNCGATE_FXA: 'false',
    ...extra,
  };
}

const secrets = new Map<string, string>();
/** One random secret per test folder and purpose: every gateway of a test gets the same. */
function secretOf(dir: string, purpose: string): string {
  const key = `${dir}\n${purpose}`;
  if (!secrets.has(key)) secrets.set(key, randomBytes(24).toString('hex'));
  return secrets.get(key) as string;
}
