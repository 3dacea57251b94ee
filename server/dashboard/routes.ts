// The operator dashboard under /__admin__/dashboard: a sign-in page (a form for the admin
// token; no data), and once signed in the page, its script and its data. It answers the admin
// bearer as the admin API does, or the session cookie the sign-in sets (session.ts); the
// cookie is honoured here and nowhere else (its Path is /__admin__, and the admin API and the
// Sync routes never read it). Without either: the sign-in page for the page, 401 for the rest.
// Only the files named here are served: no path from a request reaches the file system.
import { readFile } from 'node:fs/promises';
import Router from '@koa/router';
import type Koa from 'koa';
import { readBody } from '../request/body.js';
import { bearerMatches, tokenDigest, tokenMatches } from '../auth/bearer.js';
import { dashboardData, type DashboardSources } from './data.js';
import { DashboardSessions, SESSION_COOKIE } from './session.js';

export const DASHBOARD = '/__admin__/dashboard';

/** The pages in the source tree (dist/server/dashboard is three floors below the project). */
const PAGES = new URL('../../../server/dashboard/pages/', import.meta.url);
/** The client and uPlot, bundled by scripts/build-dashboard.mjs. */
const BUNDLE = new URL('../../dashboard/', import.meta.url);

const FILES = {
  signIn: { url: new URL('sign-in.html', PAGES), type: 'text/html; charset=utf-8' },
  page: { url: new URL('dashboard.html', PAGES), type: 'text/html; charset=utf-8' },
  script: { url: new URL('dashboard.js', BUNDLE), type: 'text/javascript; charset=utf-8' },
  style: { url: new URL('dashboard.css', BUNDLE), type: 'text/css; charset=utf-8' },
};
type File = keyof typeof FILES;

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const WRONG_TOKEN = '<p class="error" role="alert">That is not the admin token.</p>';

class NotBuilt extends Error {}

export function dashboardRouter(token: string, sources: DashboardSources, sessions = new DashboardSessions(token)): Router {
  const expected = tokenDigest(token);
  const cache = new Map<File, Buffer>();
  const router = new Router({ prefix: DASHBOARD });

  const read = async (name: File): Promise<Buffer> => {
    let body = cache.get(name);
    if (!body) {
      try {
        body = await readFile(FILES[name].url);
      } catch {
        throw new NotBuilt();
      }
      cache.set(name, body);
    }
    return body;
  };
  const send = async (ctx: Koa.Context, name: File, status = 200, edit?: (html: string) => string): Promise<void> => {
    const body = await read(name);
    ctx.status = status;
    ctx.type = FILES[name].type;
    ctx.set('Cache-Control', name === 'style' || name === 'script' ? 'private, max-age=300' : 'no-store');
    ctx.body = edit ? edit(body.toString('utf8')) : body;
  };
  const json = (ctx: Koa.Context, status: number, body: unknown) => {
    ctx.status = status;
    ctx.type = 'application/json';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = JSON.stringify(body);
  };
  const signedIn = (ctx: Koa.Context): boolean => bearerMatches(ctx, expected) || sessions.valid(ctx.cookies.get(SESSION_COOKIE));
  const cookie = (ctx: Koa.Context, value: string | null) =>
    ctx.cookies.set(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', path: '/__admin__', secure: ctx.secure, overwrite: true, ...(value === null ? {} : { maxAge: sessions.ttlMs }) });
  const signInPage = (ctx: Koa.Context, wrong: boolean) => send(ctx, 'signIn', 401, (html) => html.replace('<!--message-->', wrong ? WRONG_TOKEN : ''));

  router.use(async (ctx, next) => {
    ctx.state.route = 'admin';
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    try {
      await next();
    } catch (e) {
      // Never a stack trace: the error goes to the log, the answer says only what failed.
      if (!(e instanceof NotBuilt)) ctx.state.error = e;
      ctx.state.errorKind = e instanceof NotBuilt ? 'http-503' : 'internal';
      json(ctx, e instanceof NotBuilt ? 503 : 500, { error: e instanceof NotBuilt ? 'the dashboard is not built: run npm run build' : 'internal error' });
    }
  });

  router.get('/', async (ctx) => (signedIn(ctx) ? send(ctx, 'page') : signInPage(ctx, false)));
  // The sign-in page's style: no data in it.
  router.get('/dashboard.css', (ctx) => send(ctx, 'style'));
  router.get('/dashboard.js', async (ctx) => (signedIn(ctx) ? send(ctx, 'script') : json(ctx, 401, { error: 'sign in first' })));
  router.get('/data', async (ctx) => (signedIn(ctx) ? json(ctx, 200, await dashboardData(sources)) : json(ctx, 401, { error: 'sign in first' })));

  router.post('/session', async (ctx) => {
    let given = '';
    try {
      given = new URLSearchParams(await readBody(ctx, 4096)).get('token') ?? '';
    } catch {
      // too large or not text: a wrong token
    }
    if (!tokenMatches(given, expected)) return signInPage(ctx, true);
    cookie(ctx, sessions.issue());
    ctx.redirect(DASHBOARD);
    ctx.status = 303;
  });
  router.post('/sign-out', (ctx) => {
    cookie(ctx, null);
    ctx.redirect(DASHBOARD);
    ctx.status = 303;
  });
  return router;
}
