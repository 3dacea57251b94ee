// DELETE storage and DELETE on the endpoint itself (spec 3.6): every collection, record and batch.
import type Koa from 'koa';
import { seconds } from '../../common/json.js';
import { preconditions } from '../request/headers.js';
import { sendJson, setLastModified } from '../respond.js';
import { uidOf, type RouteDeps } from './context.js';

export function storageRoutes({ store }: RouteDeps) {
  return {
    deleteAll: async (ctx: Koa.Context) => {
      const modified = await store.deleteAll(uidOf(ctx), preconditions(ctx));
      setLastModified(ctx, modified);
      sendJson(ctx, { modified: seconds(modified) });
    },
  };
}
