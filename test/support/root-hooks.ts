// Mocha root hooks: no test may leave an unhandled rejection behind, in this process or in a
// gateway it started; the shared test Couch is stopped once, after every suite.
import { stopTestCouch } from './couch.js';
import { assertNoUnhandled } from './unhandled.js';

export const mochaHooks = {
  afterEach(): void {
    assertNoUnhandled();
  },
  async afterAll(): Promise<void> {
    await stopTestCouch();
    assertNoUnhandled();
  },
};
