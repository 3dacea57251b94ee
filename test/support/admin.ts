// The admin API as the federation tests call it: bearer credential, JSON in and out, and any
// answer of 300 or above fails the test with its status and body.
import assert from 'node:assert/strict';

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
