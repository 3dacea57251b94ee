// What the server processes spend while the load runs, read from Linux /proc by pid: CPU
// seconds, resident memory and bytes written to storage, each summed over the process and
// its descendants (CouchDB's couchjs, for one).
import { readdirSync, readFileSync } from 'node:fs';

export interface ProbeSample {
  /** CPU seconds (user + system) since the process started. */
  cpuSeconds: number;
  rssBytes: number;
  /** Bytes the processes caused to be written to storage (/proc/<pid>/io write_bytes). */
  writtenBytes: number;
}

const TICKS = 100; // USER_HZ on Linux

function stat(pid: number): { ppid: number; cpu: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICKS };
  } catch {
    return undefined;
  }
}

function field(file: string, name: RegExp): number {
  try {
    return Number(name.exec(readFileSync(file, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The pids and every descendant of theirs now running. */
export function withDescendants(pids: readonly number[]): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s) parent.set(Number(name), s.ppid);
  }
  const wanted = new Set(pids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!wanted.has(pid) && wanted.has(ppid)) {
        wanted.add(pid);
        grew = true;
      }
    }
  }
  return [...wanted];
}

export function sample(pids: readonly number[]): ProbeSample {
  let cpuSeconds = 0;
  let rssBytes = 0;
  let writtenBytes = 0;
  for (const pid of withDescendants(pids)) {
    cpuSeconds += stat(pid)?.cpu ?? 0;
    rssBytes += field(`/proc/${pid}/status`, /VmRSS:\s+(\d+)/) * 1024;
    writtenBytes += field(`/proc/${pid}/io`, /write_bytes:\s+(\d+)/);
  }
  return { cpuSeconds, rssBytes, writtenBytes };
}

/** Whether every pid names a running process this user may read. */
export function readable(pids: readonly number[]): boolean {
  return pids.every((pid) => stat(pid) !== undefined);
}
