// GET, POST and DELETE storage/{collection} (spec 3.7–3.9, 5).
import type Koa from 'koa';
import { seconds, toJson } from '../../common/json.js';
import type { Bso, WriteResult } from '../../storage/store.js';
import { bodyFormat, parseItems, readBody } from '../request/body.js';
import { checkDeclaredSizes, outputFormat, preconditions } from '../request/headers.js';
import { postInput } from '../request/post-items.js';
import { parseBatchParams, parseIds, parseListQuery } from '../request/query.js';
import { sendJson, setLastModified, setRecords } from '../respond.js';
import { collectionOf, queryOf, uidOf, type RouteDeps } from './context.js';

export const bsoJson = (b: Bso): Record<string, unknown> => ({
  id: b.id,
  modified: seconds(b.modified),
  payload: b.payload,
  sortindex: b.sortindex,
});

/** Sets the headers of a successful write and, with quotas on, how much is left. */
export function writeHeaders(ctx: Koa.Context, result: Pick<WriteResult, 'modified' | 'quotaRemaining'>): void {
  setLastModified(ctx, result.modified);
  // As Mozilla's Python server: only when less than 1 MiB is left, in KB.
  if (result.quotaRemaining !== undefined && result.quotaRemaining < 1024 * 1024) {
    ctx.set('X-Weave-Quota-Remaining', (result.quotaRemaining / 1024).toFixed(2));
  }
}

export function collectionRoutes({ store, config }: RouteDeps) {
  return {
    list: async (ctx: Koa.Context) => {
      const collection = collectionOf(ctx);
      const query = parseListQuery(queryOf(ctx));
      const pre = preconditions(ctx);
      const format = outputFormat(ctx);
      const result = await store.list(uidOf(ctx), collection, query, pre);
      setLastModified(ctx, result.lastModified);
      setRecords(ctx, result.items.length);
      if (result.nextOffset !== undefined) ctx.set('X-Weave-Next-Offset', result.nextOffset);
      const items = query.full ? (result.items as Bso[]).map(bsoJson) : result.items;
      if (format === 'newlines') {
        ctx.type = 'application/newlines';
        ctx.body = items.map((i) => `${toJson(i)}\n`).join('');
      } else {
        sendJson(ctx, items);
      }
    },

    post: async (ctx: Koa.Context) => {
      const collection = collectionOf(ctx);
      const batch = parseBatchParams(queryOf(ctx));
      const pre = preconditions(ctx);
      const format = bodyFormat(ctx, true);
      checkDeclaredSizes(ctx, config.limits);
      const text = await readBody(ctx, config.limits.maxRequestBytes);
      const input = postInput(parseItems(text, format), collection, config.limits);
      const uid = uidOf(ctx);
      // For the request log (logging.ts): the shape of this upload.
      ctx.state.records = input.records.length + Object.keys(input.failed).length;
      if (batch.mode !== 'none') ctx.state.batch = batch.mode === 'open' ? (batch.commit ? 'open-commit' : 'open') : batch.commit ? 'commit' : 'append';

      if (batch.mode === 'none' || (batch.mode === 'open' && batch.commit)) {
        const result = await store.post(uid, collection, input, pre);
        writeHeaders(ctx, result);
        sendJson(ctx, { modified: seconds(result.modified), success: result.success, failed: result.failed });
        return;
      }
      if (batch.mode === 'continue' && batch.commit) {
        const result = await store.commitBatch(uid, collection, batch.id, input, pre);
        writeHeaders(ctx, result);
        sendJson(ctx, { modified: seconds(result.modified), success: result.success, failed: result.failed });
        return;
      }
      const accepted =
        batch.mode === 'open'
          ? await store.openBatch(uid, collection, input, pre)
          : await store.appendBatch(uid, collection, batch.id, input, pre);
      setLastModified(ctx, accepted.lastModified);
      sendJson(ctx, { batch: accepted.batch, success: accepted.success, failed: accepted.failed }, 202);
    },

    delete: async (ctx: Koa.Context) => {
      const collection = collectionOf(ctx);
      const ids = queryOf(ctx).get('ids');
      const parsed = ids === null ? undefined : parseIds(ids);
      const pre = preconditions(ctx);
      const uid = uidOf(ctx);
      const modified =
        parsed === undefined
          ? await store.deleteCollection(uid, collection, pre)
          : await store.deleteItems(uid, collection, parsed, pre);
      setLastModified(ctx, modified);
      sendJson(ctx, { modified: seconds(modified) });
    },
  };
}

