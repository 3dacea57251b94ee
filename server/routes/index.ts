// The Sync 1.5 route table. Routing comes first (unknown path 404, wrong method 405), then
// Hawk, then each handler's own validation, as Mozilla's server orders them (spec 2).
import { METHODS } from 'node:http';
import Router from '@koa/router';
import type Koa from 'koa';
import { SyncError } from '../../common/errors.js';
import { authenticate } from '../auth/authenticate.js';
import { collectionRoutes } from './collection.js';
import type { RouteDeps } from './context.js';
import { infoRoutes } from './info.js';
import { itemRoutes } from './item.js';
import { storageRoutes } from './storage.js';

const UID = /^[0-9]{1,10}$/;

export function syncRouter(deps: RouteDeps): Router {
  // Every method is "implemented": one that no route serves is a 405 on a known path and a
  // 404 elsewhere (spec 6.3), never the router's default 501.
  const router = new Router({ methods: [...METHODS] });
  const auth = authenticate(deps.config, deps.masterSecret);
  const named =
    (name: string): Koa.Middleware =>
    (ctx, next) => {
      if (!UID.test(ctx.params.uid ?? '')) throw new SyncError('not-found', 'uid is not numeric');
      ctx.state.route = name;
      return next();
    };
  const info = infoRoutes(deps);
  const coll = collectionRoutes(deps);
  const item = itemRoutes(deps);
  const storage = storageRoutes(deps);
  const base = '/1.5/:uid';

  router.get(`${base}/info/collections`, named('info/collections'), auth, info.collections);
  router.get(`${base}/info/quota`, named('info/quota'), auth, info.quota);
  router.get(`${base}/info/collection_usage`, named('info/collection_usage'), auth, info.usage);
  router.get(`${base}/info/collection_counts`, named('info/collection_counts'), auth, info.counts);
  router.get(`${base}/info/configuration`, named('info/configuration'), auth, info.configuration);

  router.get(`${base}/storage/:collection`, named('collection'), auth, coll.list);
  router.post(`${base}/storage/:collection`, named('collection'), auth, coll.post);
  router.delete(`${base}/storage/:collection`, named('collection'), auth, coll.delete);

  router.get(`${base}/storage/:collection/:id`, named('item'), auth, item.get);
  router.put(`${base}/storage/:collection/:id`, named('item'), auth, item.put);
  router.delete(`${base}/storage/:collection/:id`, named('item'), auth, item.delete);

  router.delete(`${base}/storage`, named('storage'), auth, storage.deleteAll);
  router.delete(base, named('storage'), auth, storage.deleteAll);
  return router;
}
