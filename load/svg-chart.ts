// Plain SVG charts for the load report: no script, so the report opens anywhere, offline.

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const W = 720;
const H = 260;
const PAD = { left: 64, right: 16, top: 28, bottom: 40 };

export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Round tick values for an axis from 0 (or min) to max. */
function ticks(min: number, max: number, n = 5): number[] {
  if (max <= min) max = min + 1;
  const raw = (max - min) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const fmt = (v: number) => (Math.abs(v) >= 1e6 ? `${(v / 1e6).toPrecision(3)}M` : Math.abs(v) >= 1e4 ? `${(v / 1e3).toPrecision(3)}k` : String(Number(v.toPrecision(4))));

function frame(title: string, xLabel: string, yLabel: string, xs: number[], ys: number[], x: (v: number) => number, y: (v: number) => number, body: string, legend: string[]): string {
  const grid = ys.map((v) => `<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${PAD.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`).join('');
  const xt = xs.map((v) => `<text x="${x(v)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${fmt(v)}</text>`).join('');
  const keys = legend.map((name, i) => `<rect x="${PAD.left + 8 + i * 150}" y="8" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${PAD.left + 22 + i * 150}" y="17">${escapeHtml(name)}</text>`).join('');
  return (
    `<figure><figcaption>${escapeHtml(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">` +
    `${grid}${xt}<line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#444"/><line x1="${PAD.left}" x2="${W - PAD.right}" y1="${H - PAD.bottom}" y2="${H - PAD.bottom}" stroke="#444"/>` +
    `<text x="${(W + PAD.left) / 2}" y="${H - 6}" text-anchor="middle">${escapeHtml(xLabel)}</text><text x="14" y="${(H - PAD.bottom + PAD.top) / 2}" transform="rotate(-90 14 ${(H - PAD.bottom + PAD.top) / 2})" text-anchor="middle">${escapeHtml(yLabel)}</text>` +
    `${body}${keys}</svg></figure>`
  );
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const all = series.flatMap((s) => s.points);
  const xMax = Math.max(1, ...all.map((p) => p[0]));
  const xMin = Math.min(0, ...all.map((p) => p[0]));
  const yMax = Math.max(0, ...all.map((p) => p[1])) * 1.05 || 1;
  const x = (v: number) => PAD.left + ((v - xMin) / (xMax - xMin || 1)) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);
  const body = series
    .map((s, i) => {
      const d = s.points.map(([a, b], j) => `${j ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join('');
      const dots = s.points.length <= 30 ? s.points.map(([a, b]) => `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="2.5" fill="${COLORS[i % COLORS.length]}"/>`).join('') : '';
      return `<path d="${d}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5"/>${dots}`;
    })
    .join('');
  return frame(title, xLabel, yLabel, ticks(xMin, xMax), ticks(0, yMax), x, y, body, series.map((s) => s.name));
}

/** Bars in groups: one group per category, one bar per series. */
export function barChart(title: string, yLabel: string, categories: string[], series: Array<{ name: string; values: number[] }>): string {
  // Room on the left for the first category's slanted name.
  const LEFT = 130;
  const yMax = Math.max(0, ...series.flatMap((s) => s.values)) * 1.05 || 1;
  const h = H + 60;
  const plotW = W - LEFT - PAD.right;
  const groupW = plotW / Math.max(1, categories.length);
  const barW = (groupW * 0.8) / Math.max(1, series.length);
  const y = (v: number) => h - PAD.bottom - 60 - (v / yMax) * (h - PAD.top - PAD.bottom - 60);
  const base = h - PAD.bottom - 60;
  const grid = ticks(0, yMax).map((v) => `<line x1="${LEFT}" x2="${W - PAD.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`).join('');
  const bars = categories
    .map((c, g) => {
      const gx = LEFT + g * groupW + groupW * 0.1;
      const rects = series.map((s, i) => `<rect x="${(gx + i * barW).toFixed(1)}" y="${y(s.values[g] ?? 0).toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(base - y(s.values[g] ?? 0)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${escapeHtml(`${s.name} ${c}: ${fmt(s.values[g] ?? 0)}`)}</title></rect>`).join('');
      const lx = gx + groupW * 0.4;
      return `${rects}<text x="${lx}" y="${base + 12}" text-anchor="end" transform="rotate(-30 ${lx} ${base + 12})">${escapeHtml(c)}</text>`;
    })
    .join('');
  const keys = series.map((s, i) => `<rect x="${LEFT + 8 + i * 150}" y="8" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${LEFT + 22 + i * 150}" y="17">${escapeHtml(s.name)}</text>`).join('');
  return (
    `<figure><figcaption>${escapeHtml(title)}</figcaption><svg viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" font-family="sans-serif" font-size="11">` +
    `${grid}<line x1="${LEFT}" x2="${W - PAD.right}" y1="${base}" y2="${base}" stroke="#444"/><text x="14" y="${(base + PAD.top) / 2}" transform="rotate(-90 14 ${(base + PAD.top) / 2})" text-anchor="middle">${escapeHtml(yLabel)}</text>${bars}${keys}</svg></figure>`
  );
}
