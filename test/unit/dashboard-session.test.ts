// The dashboard's session cookie (server/dashboard/session.ts): valid until it expires, only
// under the admin token that signed it, and nothing altered passes.
import assert from 'node:assert/strict';
import { DashboardSessions } from '../../server/dashboard/session.js';

describe('dashboard session cookie', () => {
  let now = 1_000_000;
  const sessions = new DashboardSessions('admin-token-of-this-test', 60_000, () => now);

  it('accepts what it issued until it expires', () => {
    const value = sessions.issue();
    assert.equal(sessions.valid(value), true);
    now += 59_999;
    assert.equal(sessions.valid(value), true);
    now += 1;
    assert.equal(sessions.valid(value), false);
  });

  it('refuses a session signed under another admin token', () => {
    const other = new DashboardSessions('another-admin-token-here', 60_000, () => now);
    assert.equal(sessions.valid(other.issue()), false);
  });

  it('refuses an altered expiry, a cut MAC and nonsense', () => {
    const value = sessions.issue();
    const [expires, nonce, mac] = value.split('.') as [string, string, string];
    assert.equal(sessions.valid(`${Number(expires) + 3_600_000}.${nonce}.${mac}`), false);
    assert.equal(sessions.valid(`${expires}.${nonce}.${mac.slice(0, -2)}`), false);
    // The MAC's first character, changed (its last one carries padding bits that decode alike).
    const flipped = `${expires}.${nonce}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    for (const junk of [undefined, '', '.', 'x.y.z', flipped]) assert.equal(sessions.valid(junk), false);
  });
});
