// A gateway on the test Couch, beside the Couch's admin credentials: for tests that write into
// a user's database past the gateway (as a node's admin or replication could) and then read it
// through the gateway. Registers its mocha hooks; call it inside a describe.
import { basicAuth, testCouchUrl } from './couch.js';
import { startGateway, type TestGateway } from './gateway.js';

export interface GatewayBesideCouchAdmin {
  gw: TestGateway;
  /** A request to the test Couch with its admin's credentials; `path` has no leading slash. */
  couch(method: string, path: string, body?: object): Promise<{ status: number; json: unknown }>;
}

export function gatewayBesideCouchAdmin(): GatewayBesideCouchAdmin {
  let base = '';
  let auth = '';
  const env = {
    async couch(method: string, path: string, body?: object) {
      const res = await fetch(`${base}/${path}`, {
        method,
        headers: { Authorization: auth, 'Content-Type': 'application/json' },
        body: body && JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json()) as unknown };
    },
  } as GatewayBesideCouchAdmin;
  before(async () => {
    const url = await testCouchUrl();
    const u = new URL(url);
    base = `${u.protocol}//${u.host}`;
    auth = basicAuth(u);
    env.gw = await startGateway({ COUCH_URL: url });
  });
  after(() => env.gw?.close());
  return env;
}
