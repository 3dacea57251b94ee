// Two Firefox profiles on one syncgate account, as a person with two computers has them:
// what profile A makes (a bookmark, a visited page, a saved password) appears in profile B
// after B signs in, and an edit made in B comes back to A. Once on the embedded store and once
// on a gateway whose user databases live on a Couch (pouchdb-server, inside the namespace).
// Needs Debian's firefox-esr and root for the network namespace; skipped, saying why, without.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Firefox, firefoxBinary, Netns } from '../support/firefox.js';
import { editThings, eventually, firstSync, lookAt, makeThings, signInOnPage, syncNow, type Made } from '../support/firefox-sync.js';

const binary = firefoxBinary();

for (const store of ['embedded', 'couch'] as const) {
  describe(`two Firefox profiles on one account sync both ways (${store} store)`, function () {
    this.timeout(360_000);
    if ('missing' in binary) {
      // Skipped only where Firefox (or root for the namespace) is missing; the title says how to get it.
      it.skip(`needs a real Firefox: ${binary.missing}`);
      return;
    }
    let ns: Netns;
    const running: Firefox[] = [];
    before(async () => {
      ns = await Netns.start(store === 'couch' ? { SYNCGATE_TEST_NETNS_COUCH: '1' } : {});
    });
    after(async () => {
      for (const ff of running) await ff.stop().catch(() => undefined);
      await ns.stop();
    });

    it('bookmarks, history and a saved password made in A appear in B; an edit in B comes back to A', async () => {
      const tag = randomBytes(4).toString('hex');
      const made: Made = {
        bookmark: { url: `https://example.com/bookmark-${tag}`, title: `Bookmark ${tag}` },
        visit: { url: `https://example.com/visited-${tag}`, title: `Visited ${tag}` },
        login: { origin: 'https://accounts.example.com', username: `user-${tag}`, password: 'first site password' },
      };
      const email = `${tag}@example.org`;
      const a = await Firefox.start(binary.path, ns, 0);
      running.push(a);
      await signInOnPage(a, email, 'a long password', 'signup');
      assert.equal((await firstSync(a)).status.sync, 'success.sync');
      await makeThings(a, made);
      const uploaded = await syncNow(a);
      assert.equal(uploaded.status.sync, 'success.sync', JSON.stringify(uploaded.status));

      const b = await Firefox.start(binary.path, ns, 1);
      running.push(b);
      await signInOnPage(b, email, 'a long password', 'signin');
      const first = await firstSync(b);
      assert.equal(first.status.sync, 'success.sync', JSON.stringify(first.status));
      assert.equal(first.endpoint, uploaded.endpoint, 'one account, one storage');
      const inB = await eventually(() => lookAt(b, made), (l) => l.bookmarkTitle !== null && l.visited && l.password !== null);
      assert.deepEqual(inB, { bookmarkTitle: made.bookmark.title, visited: true, password: 'first site password' });

      await editThings(b, made, `Renamed in B ${tag}`, 'changed in B');
      assert.equal((await syncNow(b)).status.sync, 'success.sync');
      const back = await eventually(async () => (await syncNow(a), lookAt(a, made)), (l) => l.bookmarkTitle === `Renamed in B ${tag}` && l.password === 'changed in B');
      assert.deepEqual(back, { bookmarkTitle: `Renamed in B ${tag}`, visited: true, password: 'changed in B' });
    });
  });
}
