// Sync timestamps live as integer milliseconds that are multiples of 10 (the protocol's
// 0.01 s resolution). Integers keep comparisons exact; the two-decimal text form is made
// only at the edge (headers and JSON bodies).

/** Milliseconds truncated to the protocol's 10 ms resolution. */
export function quantize(ms: number): number {
  return ms - (ms % 10);
}

export function nowMs(): number {
  return quantize(Date.now());
}

/** "1700000000.50": two decimals, as headers and bodies need. */
export function formatSeconds(ms: number): string {
  const cs = Math.floor(ms / 10);
  const whole = Math.floor(cs / 100);
  const frac = cs % 100;
  return `${whole}.${frac < 10 ? '0' : ''}${frac}`;
}

const DECIMAL = /^\s*[0-9]+(\.[0-9]*)?\s*$|^\s*\.[0-9]+\s*$/;

/**
 * Parses a client-supplied timestamp (newer, older, X-If-*-Since). Any number of decimals is
 * accepted, as Mozilla's server does; negative or non-numeric values give undefined.
 */
export function parseSeconds(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) return undefined;
  return quantize(Math.round(value * 1000));
}
