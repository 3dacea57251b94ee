// Reads and parses PUT/POST bodies ourselves: text/plain is JSON for Sync (Firefox's default),
// application/newlines is one record per line, and every failure needs the protocol's code.
import type Koa from 'koa';
import { SyncError } from '../../common/errors.js';

export type BodyFormat = 'json' | 'newlines';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Content-Type to body format; parameters such as charset are ignored, as RS does. */
export function bodyFormat(ctx: Koa.Context, allowNewlines: boolean): BodyFormat {
  const header = ctx.get('Content-Type');
  if (header === '') return 'json';
  const type = header.split(';')[0]?.trim().toLowerCase();
  if (type === 'application/json' || type === 'text/plain') return 'json';
  if (type === 'application/newlines' && allowNewlines) return 'newlines';
  if (type === 'application/newlines') throw new SyncError('invalid-bso', 'newlines body on PUT');
  throw new SyncError('unsupported-media-type');
}

export async function readBody(ctx: Koa.Context, maxBytes: number): Promise<string> {
  const declared = ctx.get('Content-Length');
  if (declared !== '' && Number(declared) > maxBytes) throw new SyncError('too-large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new SyncError('too-large');
    chunks.push(chunk);
  }
  try {
    return utf8.decode(Buffer.concat(chunks));
  } catch {
    throw new SyncError('invalid-bso', 'body is not UTF-8');
  }
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new SyncError('invalid-bso', 'body is not JSON');
  }
}

/** The items of a POST body: a JSON array, or one JSON value per line. */
export function parseItems(text: string, format: BodyFormat): unknown[] {
  if (format === 'json') {
    const value = parseJson(text);
    if (!Array.isArray(value)) throw new SyncError('invalid-bso', 'body is not a list');
    return value;
  }
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // a trailing newline ends the last line
  return lines.map((line) => {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (l.trim() === '') throw new SyncError('invalid-bso', 'empty line');
    return parseJson(l);
  });
}
