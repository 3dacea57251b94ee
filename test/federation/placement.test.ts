// Placement rules (federation/placement.ts) and node credentials at rest (node-secrets.ts).
import assert from 'node:assert/strict';
import { NodeSecrets, joinCouchUrl, splitCouchUrl } from '../../federation/node-secrets.js';
import { place, type PlacementCandidate } from '../../federation/placement.js';

const node = (name: string, operator: string, over: Partial<PlacementCandidate> = {}): PlacementCandidate => ({
  name,
  operator,
  capacity: 100,
  assigned: 0,
  weight: 1,
  active: true,
  ...over,
});

describe('placement of a new user', () => {
  it('the primary goes to the active node with the most free capacity', () => {
    const p = place([node('a', 'x', { assigned: 90 }), node('b', 'y', { assigned: 10 }), node('c', 'z', { capacity: 50 })]);
    assert.equal(p?.primary, 'b');
  });

  it('free capacity is weighted', () => {
    assert.equal(place([node('a', 'x', { weight: 3, assigned: 50 }), node('b', 'y', { weight: 1 })])?.primary, 'a'); // 150 > 100
    assert.equal(place([node('a', 'x', { weight: 3, assigned: 70 }), node('b', 'y', { weight: 1 })])?.primary, 'b'); // 90 < 100
    assert.equal(place([node('a', 'x', { weight: 0 }), node('b', 'y', { assigned: 99 })])?.primary, 'b');
  });

  it('the replica goes to a node of another operator when one exists', () => {
    const p = place([node('a1', 'x'), node('a2', 'x', { assigned: 1 }), node('b1', 'y', { assigned: 50 })]);
    assert.deepEqual(p, { primary: 'a1', replica: 'b1' });
  });

  it('with one operator only, the replica goes to another of its nodes; with one node, there is none', () => {
    assert.deepEqual(place([node('a1', 'x'), node('a2', 'x', { assigned: 5 })]), { primary: 'a1', replica: 'a2' });
    assert.deepEqual(place([node('a1', 'x')]), { primary: 'a1' });
  });

  it('full, inactive (down, draining) and zero-weight nodes take no one; none left: undefined', () => {
    assert.equal(place([node('a', 'x', { assigned: 100 }), node('b', 'y', { active: false }), node('c', 'z', { weight: 0 })]), undefined);
    assert.deepEqual(place([node('a', 'x', { active: false }), node('b', 'y')]), { primary: 'b' });
  });

  it('ties are shared out by account, and the same account always gets the same answer', () => {
    const nodes = [node('b', 'y'), node('a', 'x')];
    const primaries = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const p = place(nodes, `user${i}@example.com`);
      assert.deepEqual(place([...nodes].reverse(), `user${i}@example.com`), p);
      primaries.set(p!.primary, (primaries.get(p!.primary) ?? 0) + 1);
    }
    assert.ok((primaries.get('a') ?? 0) > 60 && (primaries.get('b') ?? 0) > 60, JSON.stringify([...primaries]));
  });
});

describe('node credentials at rest', () => {
  it('split from the URL, sealed as a JWE that does not contain them, opened only with the key', async () => {
    const { url, credentials } = splitCouchUrl('http://ops%40x:s3cr%3At@10.0.0.5:5984/');
    assert.equal(url, 'http://10.0.0.5:5984');
    assert.deepEqual(credentials, { username: 'ops@x', password: 's3cr:t' });
    const secrets = new NodeSecrets('a key of at least sixteen chars');
    const jwe = await secrets.seal(credentials!);
    assert.equal(jwe.split('.').length, 5);
    assert.ok(!jwe.includes('s3cr') && !Buffer.from(jwe.replace(/\./g, ''), 'base64url').toString('latin1').includes('s3cr'));
    assert.deepEqual(await secrets.open(jwe), credentials);
    await assert.rejects(new NodeSecrets('another key of sixteen chars').open(jwe));
    assert.equal(joinCouchUrl(url, credentials), 'http://ops%40x:s3cr%3At@10.0.0.5:5984');
  });
});
