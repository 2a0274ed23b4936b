/** A self-contained HTML page with an SVG chart of GPUs in use per day, one line per policy. */
import type { FleetResult } from './fleet.ts';

const COLORS = ['#888888', '#b07aa1', '#e15759', '#f28e2b', '#4e79a7'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The report: title, notes (sources), chart and the summary table. */
export function fleetReportHtml(title: string, notes: string[], results: readonly FleetResult[]): string {
  const W = 900, H = 420, L = 60, R = 160, T = 20, B = 40;
  const days = Math.max(...results.map((r) => r.gpusDailyMean.length));
  const ymax = Math.max(1, ...results.flatMap((r) => r.gpusDailyMean)) * 1.05;
  const x = (d: number) => L + ((W - L - R) * d) / Math.max(1, days - 1);
  const y = (v: number) => T + (H - T - B) * (1 - v / ymax);
  const lines = results.map((r, i) => {
    const pts = r.gpusDailyMean.map((v, d) => `${x(d).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const c = COLORS[i % COLORS.length];
    return `<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts}"/>` +
      `<text x="${W - R + 8}" y="${T + 16 * i + 12}" fill="${c}" font-size="12">${esc(r.policy)}</text>`;
  });
  const ticks: string[] = [];
  for (let k = 0; k <= 5; k++) {
    const v = (ymax * k) / 5;
    ticks.push(`<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${Math.round(v)}</text>`);
  }
  for (let d = 0; d < days; d += Math.max(1, Math.ceil(days / 12))) {
    ticks.push(`<text x="${x(d)}" y="${H - B + 16}" text-anchor="middle" font-size="11">${d}</text>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">${ticks.join('')}` +
    `<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle" font-size="12">day</text>` +
    `<text x="14" y="${T + (H - T - B) / 2}" font-size="12" transform="rotate(-90 14 ${T + (H - T - B) / 2})" text-anchor="middle">GPUs in use (daily mean)</text>` +
    `${lines.join('')}</svg>`;
  const rows = results.map((r) => `<tr><td>${esc(r.policy)}</td><td>${r.gpusMean.toFixed(0)}</td><td>${r.gpusPeak}</td><td>${(100 * r.sloViolationRate).toFixed(2)}%</td><td>${r.trainingJctMeanH.toFixed(2)}</td></tr>`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>` +
    `<style>body{font-family:sans-serif;margin:24px}td,th{padding:2px 10px;text-align:right}td:first-child{text-align:left}</style></head><body>` +
    `<h1>${esc(title)}</h1>${svg}<table><tr><th>policy</th><th>GPUs (daily mean)</th><th>peak</th><th>SLO violations</th><th>training JCT (h)</th></tr>${rows.join('')}</table>` +
    `<ul>${notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></body></html>\n`;
}
