// What every storage route needs from the request before it touches storage.
import type Koa from 'koa';
import { SyncError } from '../../common/errors.js';
import type { Store } from '../../storage/store.js';
import type { Config } from '../config.js';
import { BSO_ID, COLLECTION } from '../request/bso.js';

export interface RouteDeps {
  config: Config;
  store: Store;
  masterSecret: string;
}

export const uidOf = (ctx: Koa.Context): string => (ctx.state as { uid: string }).uid;

export function collectionOf(ctx: Koa.Context): string {
  const c = ctx.params.collection ?? '';
  if (!COLLECTION.test(c)) throw new SyncError('bad-request', 'invalid collection name');
  return c;
}

export function bsoIdOf(ctx: Koa.Context): string {
  const id = ctx.params.id ?? '';
  if (!BSO_ID.test(id)) throw new SyncError('bad-request', 'invalid record id');
  return id;
}

export const queryOf = (ctx: Koa.Context): URLSearchParams => new URLSearchParams(ctx.querystring);
