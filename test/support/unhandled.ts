// Unhandled rejections fail the run. Mocha traps them and re-emits them on the process, where
// nothing listens, so without this they would pass unseen; a gateway process logs its own
// (bin/syncgate.ts) and the launcher reports those lines here (test/support/process.ts).
const seen: string[] = [];
// Mocha re-emits each one it traps: count each promise once.
const promises = new WeakSet<Promise<unknown>>();

process.on('unhandledRejection', (reason, promise) => {
  if (promises.has(promise)) return;
  promises.add(promise);
  seen.push(`test process: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
});

export function reportUnhandled(what: string): void {
  seen.push(what);
}

/** Throws when any were seen since the last call, naming them. */
export function assertNoUnhandled(): void {
  if (seen.length === 0) return;
  const all = seen.splice(0);
  throw new Error(`${all.length} unhandled rejection(s):\n${all.map((s) => s.slice(0, 2000)).join('\n')}`);
}
