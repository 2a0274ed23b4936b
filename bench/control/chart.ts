/**
 * One self-contained SVG per scenario: p99 against the SLO, sleep duty, MPS share and training throughput
 * over time, one line per policy. Long runs are bucketed to at most MAX_POINTS points per line (the worst
 * p99 of a bucket, the mean of the rest).
 */
import type { RunResult, SecondRow } from './simulate.ts';

const MAX_POINTS = 600;
const COLORS: Record<string, string> = {
  'no-colocation': '#7f7f7f', simple: '#bcbd22', conservative: '#17becf', gslice: '#ff7f0e',
  'gpucolo-paper': '#9467bd', 'gpucolo-paper-p99': '#8c564b', gpucolo: '#1f77b4',
  'gslice-tuned': '#d62728', 'gpucolo-paper-p99-tuned': '#e377c2', 'oracle-static': '#2ca02c', 'oracle-dynamic': '#98df8a',
};

interface Panel {
  title: string;
  value: (w: SecondRow, slo: number) => number | undefined;
  worst?: boolean;
  max?: number;
  refLine?: number;
}

const PANELS: Panel[] = [
  { title: 'p99 / SLO (1 s windows; line at 1 = the SLO)', value: (w, slo) => (w.count > 0 ? w.p99Ms / slo : undefined), worst: true, refLine: 1 },
  { title: 'training sleep duty (fraction of time asleep)', value: (w) => w.sleepDuty, max: 1 },
  { title: 'training MPS share (%)', value: (w) => w.mpsSharePct, max: 100 },
  { title: 'training throughput (iterations/s, 5 s mean)', value: (w) => w.itersPerSec },
];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function bucket(rows: SecondRow[], slo: number, p: Panel, smooth: number): { t: number; v: number }[] {
  const size = Math.max(1, Math.ceil(rows.length / MAX_POINTS));
  const out: { t: number; v: number }[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const vals: number[] = [];
    for (let j = i; j < Math.min(rows.length, i + size); j++) {
      if (smooth > 1) {
        let s = 0;
        let n = 0;
        for (let k = Math.max(0, j - smooth + 1); k <= j; k++) { s += p.value(rows[k]!, slo) ?? 0; n++; }
        vals.push(s / n);
      } else {
        const v = p.value(rows[j]!, slo);
        if (v !== undefined) vals.push(v);
      }
    }
    if (vals.length === 0) continue;
    out.push({ t: rows[i]!.t, v: p.worst ? Math.max(...vals) : vals.reduce((a, b) => a + b, 0) / vals.length });
  }
  return out;
}

/** The chart of one scenario's runs as an SVG document. */
export function chartSvg(title: string, runs: RunResult[]): string {
  const W = 1000;
  const PH = 170;
  const ML = 60;
  const MR = 170;
  const MT = 40;
  const GAP = 40;
  const H = MT + PANELS.length * (PH + GAP) + 20;
  const duration = Math.max(...runs.map((r) => r.durationS));
  const x = (t: number) => ML + (t / duration) * (W - ML - MR);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${ML}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  PANELS.forEach((p, pi) => {
    const top = MT + pi * (PH + GAP);
    const series = runs.map((r) => ({ r, pts: bucket(r.seconds, r.sloMs, p, pi === 3 ? 5 : 1) }));
    let ymax = p.max ?? 0;
    if (p.max === undefined) for (const s of series) for (const pt of s.pts) ymax = Math.max(ymax, pt.v);
    if (p.refLine !== undefined) ymax = Math.min(Math.max(ymax, p.refLine * 1.2), p.refLine * 3);
    if (ymax <= 0) ymax = 1;
    const y = (v: number) => top + PH - (Math.min(v, ymax) / ymax) * PH;
    parts.push(`<text x="${ML}" y="${top - 6}" font-weight="bold">${esc(p.title)}</text>`);
    parts.push(`<rect x="${ML}" y="${top}" width="${W - ML - MR}" height="${PH}" fill="none" stroke="#ccc"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (ymax * k) / 4;
      parts.push(`<text x="${ML - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v >= 10 ? v.toFixed(0) : v.toFixed(2)}</text>`);
      parts.push(`<line x1="${ML}" x2="${W - MR}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
    }
    if (p.refLine !== undefined) parts.push(`<line x1="${ML}" x2="${W - MR}" y1="${y(p.refLine)}" y2="${y(p.refLine)}" stroke="red" stroke-dasharray="4 3"/>`);
    for (const { r, pts } of series) {
      if (pts.length === 0) continue;
      const d = pts.map((pt, i) => `${i === 0 ? 'M' : 'L'}${x(pt.t).toFixed(1)},${y(pt.v).toFixed(1)}`).join('');
      const width = r.policy === 'gpucolo' ? 2 : 1.2;
      parts.push(`<path d="${d}" fill="none" stroke="${COLORS[r.policy] ?? '#000'}" stroke-width="${width}"><title>${esc(r.policy)}</title></path>`);
    }
    const ticks = 8;
    for (let k = 0; k <= ticks; k++) {
      const t = (duration * k) / ticks;
      parts.push(`<text x="${x(t)}" y="${top + PH + 14}" text-anchor="middle" fill="#555">${t.toFixed(0)} s</text>`);
    }
  });
  runs.forEach((r, i) => {
    const ly = MT + 10 + i * 18;
    parts.push(`<line x1="${W - MR + 15}" x2="${W - MR + 40}" y1="${ly}" y2="${ly}" stroke="${COLORS[r.policy] ?? '#000'}" stroke-width="3"/>`);
    parts.push(`<text x="${W - MR + 46}" y="${ly + 4}">${esc(r.policy)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
