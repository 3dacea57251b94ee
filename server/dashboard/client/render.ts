// The tables of the page, rebuilt from each answer (a few dozen rows: simpler than patching).
import type { DashboardData, DashboardEvent } from './shape.js';

type Cell = string | number | { text: string | number; cls?: string; title?: string; data?: Record<string, string> };

function row(cells: Cell[], data: Record<string, string> = {}): HTMLTableRowElement {
  const tr = document.createElement('tr');
  Object.assign(tr.dataset, data);
  for (const c of cells) {
    const td = document.createElement('td');
    const spec = typeof c === 'object' ? c : { text: c };
    td.textContent = String(spec.text);
    if (typeof spec.text === 'number') td.classList.add('num');
    if (spec.cls) td.className = `${td.className} ${spec.cls}`.trim();
    if (spec.title) td.title = spec.title;
    if (spec.data) Object.assign(td.dataset, spec.data);
    tr.append(td);
  }
  return tr;
}

function fill(table: string, rows: HTMLTableRowElement[]): void {
  document.querySelector(`#${table} tbody`)?.replaceChildren(...rows);
}

function note(id: string, text: string | null): void {
  const el = document.getElementById(id);
  if (!el) return;
  el.hidden = text === null;
  el.textContent = text ?? '';
}

const count = (n: number) => n.toLocaleString('en');
function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
function describe(e: DashboardEvent): string {
  switch (e.kind) {
    case 'failover':
      return `node ${e.node} failed: its users are served from their replicas`;
    case 'failback':
      return `node ${e.node} merged back and served again`;
    case 'evacuated':
      return `node ${e.node} emptied`;
    case 'move':
      return `uid ${e.uid}: ${e.from} → ${e.to}`;
    case 'move-rolled-back':
      return `uid ${e.uid}: ${e.from} → ${e.to} undone`;
  }
}

export function renderTables(d: DashboardData): void {
  fill(
    'nodes',
    d.nodes.map((n) =>
      row(
        [
          { text: n.name, cls: 'name', ...(n.own ? { title: "a person's own Couch" } : {}) },
          n.operator ?? (n.name === 'default' ? "(the gateway's own store)" : '–'),
          { text: n.state, cls: `state state-${n.state}`, data: { state: n.state } },
          { text: count(n.users), cls: 'num' },
          { text: count(n.capacity), cls: 'num' },
          { text: n.health === 'suspect' ? `suspect (${n.failures} failed)` : n.health, cls: `health health-${n.health}` },
        ],
        { node: n.name },
      ),
    ),
  );
  fill(
    'operators',
    (d.operators ?? []).map((o) => row([o.name, o.synchronous ? 'synchronous' : 'asynchronous', o.nodes, { text: count(o.users), cls: 'num' }, { text: count(o.capacity), cls: 'num' }])),
  );

  const rep = document.getElementById('replication');
  if (rep) {
    const r = d.replication;
    const items: Array<[string, string]> = r
      ? [
          ['queued', count(r.queued)],
          ['running', count(r.running)],
          ['lag p50', `${r.lagMs.p50} ms`],
          ['lag p99', `${r.lagMs.p99} ms`],
          ['completed', count(r.completed)],
          ['failed', count(r.failed)],
        ]
      : [['', 'not known to this gateway']];
    rep.replaceChildren(
      ...items.map(([k, v]) => {
        const pair = document.createElement('div');
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = v;
        pair.append(dt, dd);
        return pair;
      }),
    );
  }

  fill('events', (d.events ?? []).map((e) => row([{ text: ago(e.at, d.at), title: new Date(e.at).toISOString() }, { text: e.kind, cls: `kind kind-${e.kind}` }, describe(e)])));
  note('events-note', d.events === null ? 'The registry did not answer: events unavailable.' : d.events.length === 0 ? 'Nothing in the last 7 days.' : null);

  fill('top-users', (d.topUsers ?? []).map((u) => row([u.uid, u.node, { text: count(u.records), cls: 'num' }, { text: bytes(u.bytes), cls: 'num' }, { text: count(u.requestsHour), cls: 'num' }, { text: count(u.requestsDay), cls: 'num' }])));
  note('top-users-note', d.topUsers === null ? 'This gateway keeps no per-user usage: no ranking to show.' : d.topUsers.length === 0 ? 'No users yet.' : null);
}
