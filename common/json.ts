// Sync bodies need timestamps as JSON numbers with exactly two decimals (1700000000.50, 0.00);
// JSON.stringify drops trailing zeros, so values that are timestamps are wrapped in Seconds
// and written by this serializer.
import { formatSeconds } from './timestamps.js';

export class Seconds {
  constructor(readonly ms: number) {}
}

export const seconds = (ms: number): Seconds => new Seconds(ms);

export function toJson(value: unknown): string {
  if (value instanceof Seconds) return formatSeconds(value.ms);
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (typeof value === 'object') {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${toJson(v)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value);
}
