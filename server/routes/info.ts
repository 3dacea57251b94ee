// GET info/* (spec 3.1–3.5).
import type Koa from 'koa';
import { seconds } from '../../common/json.js';
import type { Limits } from '../config.js';
import { preconditions } from '../request/headers.js';
import { sendJson, setLastModified, setRecords } from '../respond.js';
import { uidOf, type RouteDeps } from './context.js';

const kb = (bytes: number): number => bytes / 1024;

function mapValues<T, U>(o: Record<string, T>, f: (v: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

export function infoRoutes({ store, config }: RouteDeps) {
  return {
    collections: async (ctx: Koa.Context) => {
      const info = await store.info(uidOf(ctx), preconditions(ctx));
      setLastModified(ctx, info.storage);
      setRecords(ctx, Object.keys(info.collections).length);
      sendJson(ctx, mapValues(info.collections, seconds));
    },
    quota: async (ctx: Koa.Context) => {
      const usage = await store.usage(uidOf(ctx), preconditions(ctx));
      setLastModified(ctx, usage.lastModified);
      sendJson(ctx, [kb(usage.totalBytes), usage.quotaBytes === undefined ? null : kb(usage.quotaBytes)]);
    },
    usage: async (ctx: Koa.Context) => {
      const usage = await store.usage(uidOf(ctx), preconditions(ctx));
      setLastModified(ctx, usage.lastModified);
      setRecords(ctx, Object.keys(usage.bytes).length);
      sendJson(ctx, mapValues(usage.bytes, kb));
    },
    counts: async (ctx: Koa.Context) => {
      const usage = await store.usage(uidOf(ctx), preconditions(ctx));
      setLastModified(ctx, usage.lastModified);
      setRecords(ctx, Object.keys(usage.counts).length);
      sendJson(ctx, usage.counts);
    },
    configuration: async (ctx: Koa.Context) => {
      // As RS: no preconditions here, and X-Last-Modified 0.00 (mobile needs the header).
      setLastModified(ctx, 0);
      sendJson(ctx, configurationBody(config.limits));
    },
  };
}

export function configurationBody(l: Limits): Record<string, number> {
  return {
    max_post_bytes: l.maxPostBytes,
    max_post_records: l.maxPostRecords,
    max_record_payload_bytes: l.maxRecordPayloadBytes,
    max_request_bytes: l.maxRequestBytes,
    max_total_bytes: l.maxTotalBytes,
    max_total_records: l.maxTotalRecords,
    max_quota_limit: l.maxQuotaLimit,
  };
}
