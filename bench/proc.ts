// What the benchmarks read of a process from Linux /proc: CPU time, resident memory, open files.
import { readdirSync, readFileSync } from 'node:fs';

/** CPU time in ms of a process: this one, or another by pid (Linux /proc; 0 where unreadable). */
export function cpuMs(pid?: number): number {
  if (pid === undefined) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  }
  try {
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Resident memory of a process, for the table's notes ('?' where unreadable). */
export function rss(pid?: number): string {
  try {
    return `${(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024).toFixed(0)} MB`;
  } catch {
    return '?';
  }
}

/** Open file descriptors of a process ('?' where unreadable). */
export function openFiles(pid?: number): string {
  try {
    return String(readdirSync(`/proc/${pid}/fd`).length);
  } catch {
    return '?';
  }
}
