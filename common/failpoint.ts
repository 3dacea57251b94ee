// Named points where a test can make the process die hard (SIGKILL, no cleanup), to prove
// that what was acknowledged survives and what was not is all-or-nothing, or stall there, to
// widen a race window that is otherwise a few milliseconds. Inert unless SYNCGATE_FAILPOINT
// names the point; production never sets it.
const armed = process.env.SYNCGATE_FAILPOINT;

export function failpoint(name: string): void {
  if (armed !== undefined && armed === name) process.kill(process.pid, 'SIGKILL');
}

/** Waits here when SYNCGATE_FAILPOINT is `<name>=<ms>`. */
export async function failpointPause(name: string): Promise<void> {
  if (armed === undefined || !armed.startsWith(`${name}=`)) return;
  const ms = Number(armed.slice(name.length + 1));
  if (Number.isFinite(ms) && ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}
