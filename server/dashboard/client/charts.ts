// The three charts of the last hour (uPlot): request rate, error rate, latency. A step without
// requests has no error rate or latency: it is a gap, not a zero. Each chart's element carries
// `data-points`, the steps it draws that had requests (the browser test reads it).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Traffic } from './shape.js';

const HEIGHT = 190;

interface Line {
  label: string;
  stroke: string;
  /** The value at step i, or null for a gap. */
  value: (t: Traffic, i: number) => number | null;
  /** Draw each step's point: a step between two gaps is a point, not a line. */
  points?: boolean;
}

interface ChartSpec {
  el: HTMLElement;
  lines: Line[];
  unit: (v: number) => string;
}

const clock = uPlot.fmtDate('{HH}:{mm}');
const clockSec = uPlot.fmtDate('{HH}:{mm}:{ss}');
const quiet = (t: Traffic, i: number) => (t.requestsPerSec[i] ?? 0) === 0;
const pct = (v: number) => `${+(v * 100).toFixed(2)} %`;

function make(spec: ChartSpec): uPlot {
  const opts: uPlot.Options = {
    width: Math.max(200, spec.el.clientWidth),
    height: HEIGHT,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      { stroke: '#5b6472', space: 70, grid: { stroke: '#eef0f3' }, ticks: { stroke: '#dde1e6' }, values: (_u, vals) => vals.map((v) => clock(new Date(v * 1000))) },
      { stroke: '#5b6472', size: 64, grid: { stroke: '#eef0f3' }, ticks: { stroke: '#dde1e6' }, values: (_u, vals) => vals.map((v) => spec.unit(v)) },
    ],
    series: [{ label: 'at', value: (_u, v) => (v === null ? '–' : clockSec(new Date(v * 1000))) }, ...spec.lines.map((l) => ({ label: l.label, stroke: l.stroke, width: 2, fill: `${l.stroke}1a`, ...(l.points ? { points: { show: true, size: 4 } } : {}), value: (_u: uPlot, v: number | null) => (v === null ? '–' : spec.unit(v)) }))],
  };
  return new uPlot(opts, [[], ...spec.lines.map(() => [])], spec.el);
}

export class TrafficCharts {
  private readonly specs: ChartSpec[];
  private readonly plots: uPlot[];

  constructor(rate: HTMLElement, errors: HTMLElement, latency: HTMLElement) {
    this.specs = [
      { el: rate, unit: (v) => `${+v.toFixed(2)}/s`, lines: [{ label: 'requests/s', stroke: '#2563eb', value: (t, i) => t.requestsPerSec[i] ?? 0 }] },
      {
        el: errors,
        unit: pct,
        lines: [
          { label: '5xx', points: true, stroke: '#dc2626', value: (t, i) => (quiet(t, i) ? null : (t.errorRate[i] ?? 0)) },
          { label: '4xx', points: true, stroke: '#d97706', value: (t, i) => (quiet(t, i) ? null : (t.clientErrorRate[i] ?? 0)) },
        ],
      },
      {
        el: latency,
        unit: (v) => `${+v.toFixed(1)} ms`,
        lines: [
          { label: 'p50', points: true, stroke: '#059669', value: (t, i) => (quiet(t, i) ? null : (t.p50Ms[i] ?? 0)) },
          { label: 'p99', points: true, stroke: '#7c3aed', value: (t, i) => (quiet(t, i) ? null : (t.p99Ms[i] ?? 0)) },
        ],
      },
    ];
    this.plots = this.specs.map(make);
    window.addEventListener('resize', () => this.specs.forEach((s, i) => this.plots[i]?.setSize({ width: Math.max(200, s.el.clientWidth), height: HEIGHT })));
  }

  update(t: Traffic): void {
    const xs = t.t.map((ms) => ms / 1000);
    const busy = t.requestsPerSec.filter((r) => r > 0).length;
    this.specs.forEach((s, k) => {
      const ys = s.lines.map((l) => xs.map((_x, i) => l.value(t, i)));
      this.plots[k]?.setData([xs, ...ys] as uPlot.AlignedData);
      s.el.dataset.points = String(busy);
    });
  }
}
