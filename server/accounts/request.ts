// Reading the accounts server's JSON bodies and their fields, with Mozilla's errnos for what
// is missing or malformed.
import type Koa from 'koa';
import { AccountsError } from '../../common/errors.js';
import { readBody } from '../request/body.js';

/** Mozilla's server takes at most 16 KiB of JSON (its hapi payload limit). */
const MAX_BODY = 16 * 1024;

export interface JsonBody {
  /** The body as sent: what a Hawk payload hash covers. */
  raw: string;
  fields: Record<string, unknown>;
}

export async function jsonBody(ctx: Koa.Context): Promise<JsonBody> {
  const raw = await readBody(ctx, MAX_BODY);
  if (raw.trim() === '') return { raw, fields: {} };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new AccountsError('invalid-parameter', 'body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AccountsError('invalid-parameter', 'body is not an object');
  return { raw, fields: value as Record<string, unknown> };
}

export function required(fields: Record<string, unknown>, name: string): unknown {
  const v = fields[name];
  if (v === undefined || v === null) throw new AccountsError('missing-parameter', `missing ${name}`, { param: name });
  return v;
}

export function str(fields: Record<string, unknown>, name: string, pattern?: RegExp, maxLength = 2048): string {
  const v = required(fields, name);
  if (typeof v !== 'string' || v.length > maxLength || (pattern && !pattern.test(v))) {
    throw new AccountsError('invalid-parameter', `bad ${name}`, { param: name });
  }
  return v;
}

export function optionalStr(fields: Record<string, unknown>, name: string, pattern?: RegExp, maxLength = 2048): string | undefined {
  return fields[name] === undefined || fields[name] === null ? undefined : str(fields, name, pattern, maxLength);
}

export const HEX32 = /^[0-9a-fA-F]{64}$/;
