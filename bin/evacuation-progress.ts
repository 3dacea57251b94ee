// Watching a drain (`node drain <node> --move`, `operator evacuate <name>`) from the terminal:
// a progress bar on a terminal, a plain line now and then otherwise (logs, CI). The drain itself
// runs on the gateways: stopping this command stops only the watching, and running it again
// picks the watching up where the drain is.
import cliProgress from 'cli-progress';
import type { EvacuationProgress } from '../federation/evacuation.js';

/** What a gateway answers of a drain (GET /__admin__/nodes/<node>/evacuation). */
export type Progress = EvacuationProgress;

const minutes = (ms: number) => ms / 60_000;

function summary(ps: Progress[]): { total: number; done: number; remaining: number; moving: number; since: number; finished: boolean; endedAt: number } {
  const total = ps.reduce((s, p) => s + p.total, 0);
  const remaining = ps.reduce((s, p) => s + (p.evacuating ? Math.max(0, p.remaining) : 0), 0);
  const since = Math.min(...ps.map((p) => p.since ?? Date.now()));
  const endedAt = Math.max(...ps.map((p) => p.endedAt ?? Date.now()));
  return { total, remaining, done: Math.max(0, total - remaining), moving: ps.reduce((s, p) => s + p.moving, 0), since, finished: ps.every((p) => !p.evacuating), endedAt };
}

function eta(done: number, remaining: number, since: number): string {
  const elapsed = Date.now() - since;
  if (done === 0 || remaining === 0) return remaining === 0 ? '0 s' : 'unknown';
  const ms = (elapsed / done) * remaining;
  return ms < 90_000 ? `${Math.ceil(ms / 1000)} s` : `${Math.ceil(ms / 60_000)} min`;
}

/** Polls until every node is empty; resolves with the users moved and the time it took. */
export async function watchEvacuation(what: string, poll: () => Promise<Progress[]>, out: NodeJS.WriteStream = process.stdout, intervalMs = 1000): Promise<{ users: number; ms: number }> {
  let s = summary(await poll());
  const rate = () => (s.done / Math.max(minutes((s.finished ? s.endedAt : Date.now()) - s.since), 1 / 60)).toFixed(1);
  const bar = out.isTTY
    ? new cliProgress.SingleBar(
        { format: `${what} [{bar}] {percentage}% | {value}/{total} users | {rate}/min | {left} left | {moving} moving`, stream: out, hideCursor: true, clearOnComplete: false },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(Math.max(s.total, 1), s.done, { rate: rate(), left: eta(s.done, s.remaining, s.since), moving: s.moving });
  let printed = -1;
  let printedAt = 0;
  for (;;) {
    if (bar) {
      bar.setTotal(Math.max(s.total, s.done, 1));
      bar.update(s.done, { rate: rate(), left: eta(s.done, s.remaining, s.since), moving: s.moving });
    } else if (s.done !== printed || Date.now() - printedAt > 10_000) {
      out.write(`${what}: ${s.done}/${s.total} users moved, ${rate()}/min, ${eta(s.done, s.remaining, s.since)} left, ${s.moving} moving\n`);
      printed = s.done;
      printedAt = Date.now();
    }
    if (s.finished) break;
    await new Promise((r) => setTimeout(r, intervalMs));
    s = summary(await poll());
  }
  bar?.stop();
  const ms = s.endedAt - s.since;
  out.write(`${what}: done, ${s.total} users in ${(ms / 1000).toFixed(1)} s (${rate()}/min)\n`);
  return { users: s.total, ms };
}
