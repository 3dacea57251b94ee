// GET, PUT and DELETE storage/{collection}/{id} (spec 3.10–3.12).
import type Koa from 'koa';
import { SyncError } from '../../common/errors.js';
import { seconds } from '../../common/json.js';
import { checkBso, isBrokenCrypto } from '../request/bso.js';
import { bodyFormat, parseJson, readBody } from '../request/body.js';
import { preconditions } from '../request/headers.js';
import { sendJson, setLastModified } from '../respond.js';
import { bsoJson, writeHeaders } from './collection.js';
import { bsoIdOf, collectionOf, uidOf, type RouteDeps } from './context.js';

export function itemRoutes({ store, config }: RouteDeps) {
  return {
    get: async (ctx: Koa.Context) => {
      const collection = collectionOf(ctx);
      const id = bsoIdOf(ctx);
      const bso = await store.get(uidOf(ctx), collection, id, preconditions(ctx));
      setLastModified(ctx, bso.modified);
      sendJson(ctx, bsoJson(bso));
    },

    put: async (ctx: Koa.Context) => {
      const collection = collectionOf(ctx);
      const id = bsoIdOf(ctx);
      const pre = preconditions(ctx);
      bodyFormat(ctx, false);
      const check = checkBso(parseJson(await readBody(ctx, config.limits.maxRequestBytes)), id);
      if (!check.ok) throw new SyncError('invalid-bso', check.reason);
      const bso = check.bso;
      if (bso.payload !== undefined && Buffer.byteLength(bso.payload, 'utf8') > config.limits.maxRecordPayloadBytes) {
        throw new SyncError('invalid-bso', 'payload too large');
      }
      if (isBrokenCrypto(collection, bso)) throw new SyncError('invalid-bso', 'known-broken crypto payload');
      const result = await store.put(uidOf(ctx), collection, bso, pre);
      writeHeaders(ctx, result);
      sendJson(ctx, seconds(result.modified));
    },

    delete: async (ctx: Koa.Context) => {
      const collection = collectionOf(ctx);
      const id = bsoIdOf(ctx);
      const modified = await store.deleteItem(uidOf(ctx), collection, id, preconditions(ctx));
      setLastModified(ctx, modified);
      sendJson(ctx, { modified: seconds(modified) });
    },
  };
}
