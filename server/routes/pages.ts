// The sign-in page at the root (where Firefox's identity.fxaccounts.remote.root points), its
// script and style, and jose's browser build, which the page encrypts keys_jwe with. Only
// the files listed at start are served: no path from a request ever reaches the file system.
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Koa from 'koa';

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/** server/pages in the source tree: dist/server/routes is three floors below the project. */
const PAGES = fileURLToPath(new URL('../../../server/pages/', import.meta.url));
const JOSE = dirname(fileURLToPath(import.meta.resolve('jose')));

async function filesUnder(root: string, prefix: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    const type = TYPES[e.name.slice(e.name.lastIndexOf('.'))];
    if (!e.isFile() || !type) continue;
    const path = join(e.parentPath, e.name);
    files.set(`${prefix}/${relative(root, path).split(sep).join('/')}`, path);
  }
  return files;
}

function typeOf(path: string): string {
  return TYPES[path.slice(path.lastIndexOf('.'))] ?? 'application/octet-stream';
}

export async function pagesMiddleware(): Promise<Koa.Middleware> {
  const files = new Map([...(await filesUnder(PAGES, '/static/pages')), ...(await filesUnder(JOSE, '/static/jose'))]);
  const cache = new Map<string, Buffer>();
  const serve = async (ctx: Koa.Context, path: string): Promise<void> => {
    let body = cache.get(path);
    if (!body) cache.set(path, (body = await readFile(path)));
    ctx.type = typeOf(path);
    // The page derives keys from a password: nothing but this server's own files may run in it,
    // and no other site may frame it.
    ctx.set('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('Cache-Control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=3600');
    ctx.body = body;
  };
  files.set('/', join(PAGES, 'index.html'));
  return async (ctx, next) => {
    const file = ctx.method === 'GET' || ctx.method === 'HEAD' ? files.get(ctx.path) : undefined;
    if (!file) return next();
    ctx.state.route = `accounts page ${ctx.path}`; // one of the allowlisted files
    await serve(ctx, file);
  };
}
