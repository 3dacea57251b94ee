// Named points where a test can make the process die hard (SIGKILL, no cleanup), to prove
// that what was acknowledged survives and what was not is all-or-nothing. Inert unless
// SYNCGATE_FAILPOINT names the point; production never sets it.
const armed = process.env.SYNCGATE_FAILPOINT;

export function failpoint(name: string): void {
  if (armed !== undefined && armed === name) process.kill(process.pid, 'SIGKILL');
}
