// The operator dashboard's script: asks for the data every 2 s and draws it. A 401 means the
// session ended: the page is loaded again, which shows the sign-in form.
import './dashboard.css';
import { TrafficCharts } from './charts.js';
import { renderTables } from './render.js';
import type { DashboardData } from './shape.js';

const POLL_MS = 2000;
const DATA = '/__admin__/dashboard/data';

const byId = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;

function status(text: string, ok: boolean): void {
  const el = byId('status');
  el.textContent = text;
  el.classList.toggle('status-lost', !ok);
}

async function poll(charts: TrafficCharts): Promise<void> {
  try {
    const res = await fetch(DATA, { credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) {
      location.reload();
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = (await res.json()) as DashboardData;
    renderTables(data);
    if (data.traffic) charts.update(data.traffic);
    status(`live · ${new Date(data.at).toLocaleTimeString('en-GB')}`, true);
  } catch (e) {
    status(`no answer (${(e as Error).message}); trying again`, false);
  }
  setTimeout(() => void poll(charts), POLL_MS);
}

void poll(new TrafficCharts(byId('chart-rate'), byId('chart-errors'), byId('chart-latency')));
