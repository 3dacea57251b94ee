// Mocha root hooks: the shared test Couch is stopped once, after every suite.
import { stopTestCouch } from './couch.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopTestCouch();
  },
};
