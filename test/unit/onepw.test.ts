// The onepw derivations against Mozilla's published test vectors: a mistake here would give
// Firefox a key no other Mozilla-compatible client derives from the same password.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { credentials, keyBundle, openKeyBundle, passwordRecord, syncKey, tokenKeys, unwrapKb } from '../../server/accounts/onepw.js';

describe('onepw', () => {
  it('derives authPW and unwrapBKey as the onepw protocol vectors give them', () => {
    const c = credentials('andré@example.org', 'pässwörd');
    assert.equal(c.authPW.toString('hex'), '247b675ffb4c46310bc87e26d712153abe5e1c90ef00a4784594f97ef54f2375');
    assert.equal(c.unwrapBKey.toString('hex'), 'de6a2648b78284fcb9ffa81ba95803309cfba7af583c01a8a1a63e567234dd28');
  });

  it('derives the oldsync k and kid as Mozilla\'s scoped-key vector gives them', () => {
    const kB = Buffer.from('eaf9570b7219a4187d3d6bf3cec2770c2e0719b7cc0dfbb38243d6f1881675e9', 'hex');
    const { k, kid } = syncKey(kB, 1510726317123);
    assert.equal(k, 'DW_ll5GwX6SJ5GPqJVAuMUP2t6kDqhUulc2cbt26xbTcaKGQl-9l29FHAQ7kUiJETma4s9fIpEHrt909zgFang');
    assert.equal(kid, '1510726317123-IqQv4onc7VcVE1kTQkyyOw');
  });

  it('a key bundle opens with its key-fetch token only', () => {
    const kA = randomBytes(32);
    const wrapKb = randomBytes(32);
    const token = randomBytes(32);
    const bundle = keyBundle(tokenKeys(token, 'keyFetchToken').extra, kA, wrapKb);
    const opened = openKeyBundle(tokenKeys(token, 'keyFetchToken').extra, bundle);
    assert.deepEqual([opened.kA, opened.wrapKb], [kA, wrapKb]);
    assert.throws(() => openKeyBundle(tokenKeys(randomBytes(32), 'keyFetchToken').extra, bundle), /MAC/);
  });

  it('a password record gives back wrapKb for the right authPW only', async () => {
    const wrapKb = randomBytes(32);
    const right = randomBytes(32);
    const record = await passwordRecord(right, wrapKb);
    assert.deepEqual(await unwrapKb(right, record), wrapKb);
    assert.equal(await unwrapKb(randomBytes(32), record), undefined);
    assert.ok(!JSON.stringify(record).includes(wrapKb.toString('hex')));
  });
});
