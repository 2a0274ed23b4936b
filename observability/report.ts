import { ATTR, SPAN } from './spans.ts';
import type { AttrValue, SpanRecord } from './trace-file.ts';

/** A time series: x values and y values of one line. */
export interface Series {
  name: string;
  x: number[];
  y: number[];
  /** Dashed (a reference line such as the SLO). */
  dashed?: boolean;
  /** Drawn as steps (a knob holds its value until the next change). */
  step?: boolean;
}

export interface Chart {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed y range, else from the data. */
  yMin?: number;
  yMax?: number;
}

export interface GpuSummary {
  gpu: string;
  policy: string;
  sloMs: number;
  attainment: number;
  innerChanges: number;
  outerChanges: number;
  meanItersPerSec: number;
}

export interface ReportData {
  title: string;
  generatedUnixMs: number;
  spans: number;
  gpus: GpuSummary[];
  charts: Chart[];
}

const MAX_POINTS = 2000;
const num = (v: AttrValue | undefined): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const nums = (v: AttrValue | undefined): number[] => (Array.isArray(v) ? (v as unknown[]).map(Number) : []);
const strs = (v: AttrValue | undefined): string[] => (Array.isArray(v) ? (v as unknown[]).map(String) : []);

function thin(s: Series): Series {
  if (s.x.length <= MAX_POINTS) return s;
  const stride = Math.ceil(s.x.length / MAX_POINTS);
  const keep = (_: number, i: number) => i % stride === 0 || i === s.x.length - 1;
  return { ...s, x: s.x.filter(keep), y: s.y.filter(keep) };
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

/**
 * The charts of a run from its spans: per GPU latency against SLO, sleep duty, MPS share and training
 * throughput (from `gpucolo.gpu.status` spans, device time), and the fleet's GPUs in use (from
 * `gpucolo.fleet.plan` spans when a fleet ran, else the GPUs reporting status, wall time).
 */
export function reportData(spans: readonly SpanRecord[], title = 'gpucolo run'): ReportData {
  const statusByGpu = new Map<string, SpanRecord[]>();
  const changes = new Map<string, { inner: number; outer: number }>();
  // Knob values between status periods: every decision's new value at its device time.
  const knobPoints = new Map<string, { x: number; knob: string; value: number }[]>();
  let t0 = Infinity;
  for (const s of spans) {
    t0 = Math.min(t0, s.startUnixMs);
    const host = s.attributes[ATTR.host];
    const gpu = s.attributes[ATTR.gpu];
    if (typeof host !== 'string' || typeof gpu !== 'string') continue;
    const id = `${host}/${gpu}`;
    if (s.name === SPAN.status) statusByGpu.set(id, [...(statusByGpu.get(id) ?? []), s]);
    else if (s.name.startsWith(SPAN.decisionPrefix)) {
      const c = changes.get(id) ?? { inner: 0, outer: 0 };
      if (s.name.endsWith('.outer')) c.outer++;
      else c.inner++;
      changes.set(id, c);
      const dms = num(s.attributes[ATTR.deviceMs]);
      const value = num(s.attributes[ATTR.newValue]);
      if (dms !== undefined && value !== undefined) {
        knobPoints.set(id, [...(knobPoints.get(id) ?? []), { x: round(dms / 1000), knob: String(s.attributes[ATTR.knob]), value }]);
      }
    }
  }
  const charts: Chart[] = [];
  const gpus: GpuSummary[] = [];
  const ids = [...new Set([...statusByGpu.keys(), ...changes.keys()])].sort();
  ids.forEach((id, gi) => {
    const st = (statusByGpu.get(id) ?? []).sort((a, b) => (num(a.attributes[ATTR.deviceMs]) ?? 0) - (num(b.attributes[ATTR.deviceMs]) ?? 0));
    const x = st.map((s) => round((num(s.attributes[ATTR.deviceMs]) ?? 0) / 1000));
    const services = [...new Set(st.flatMap((s) => strs(s.attributes[ATTR.status.services])))];
    const latency: Series[] = [];
    for (const svc of services) {
      const p99: Series = { name: `${svc} p99`, x: [], y: [] };
      const slo: Series = { name: `${svc} SLO`, x: [], y: [], dashed: true, step: true };
      st.forEach((s, i) => {
        const k = strs(s.attributes[ATTR.status.services]).indexOf(svc);
        if (k < 0) return;
        p99.x.push(x[i]!); p99.y.push(round(nums(s.attributes[ATTR.status.p99Ms])[k] ?? 0));
        slo.x.push(x[i]!); slo.y.push(nums(s.attributes[ATTR.status.sloMs])[k] ?? 0);
      });
      latency.push(thin(p99), thin(slo));
    }
    const pick = (key: string) => st.map((s) => num(s.attributes[key]));
    const kp = knobPoints.get(id) ?? [];
    const line = (name: string, ys: (number | undefined)[], step = false, knob?: string): Series => {
      const pts: [number, number][] = [];
      ys.forEach((y, i) => { if (y !== undefined) pts.push([x[i]!, round(y)]); });
      // A knob's status samples plus its decisions, so moves between status periods show.
      if (knob && pts.length) for (const p of kp) if (p.knob === knob) pts.push([p.x, round(p.value)]);
      pts.sort((a, b) => a[0] - b[0]);
      return thin({ name, x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), step });
    };
    const duty = line('sleep duty', pick(ATTR.status.sleepDuty), true, 'pacing');
    const perIt = line('sleep ms / iteration', pick(ATTR.status.sleepMsPerIteration), true, 'pacing');
    const xl = 'device time (s)';
    charts.push(
      { id: `g${gi}-latency`, title: `${id}: p99 latency against SLO`, xLabel: xl, yLabel: 'ms', series: latency, yMin: 0 },
      perIt.x.length > duty.x.length
        ? { id: `g${gi}-sleep`, title: `${id}: training sleep per iteration`, xLabel: xl, yLabel: 'ms', series: [perIt], yMin: 0 }
        : { id: `g${gi}-sleep`, title: `${id}: training sleep duty`, xLabel: xl, yLabel: 'fraction asleep', series: [duty], yMin: 0, yMax: 1 },
      { id: `g${gi}-mps`, title: `${id}: training MPS share`, xLabel: xl, yLabel: '%', series: [line('MPS share', pick(ATTR.status.mpsSharePct), true, 'mpsSharePct')], yMin: 0, yMax: 100 },
      { id: `g${gi}-train`, title: `${id}: training throughput`, xLabel: xl, yLabel: 'iterations/s', series: [line('iterations/s', pick(ATTR.status.trainingItersPerSec))], yMin: 0 },
    );
    const last = st[st.length - 1];
    const att = last ? nums(last.attributes[ATTR.status.attainment]) : [];
    const slos = last ? nums(last.attributes[ATTR.status.sloMs]) : [];
    const its = pick(ATTR.status.trainingItersPerSec).filter((v): v is number => v !== undefined);
    const c = changes.get(id) ?? { inner: 0, outer: 0 };
    gpus.push({
      gpu: id, policy: String(last?.attributes[ATTR.policy] ?? '?'), sloMs: slos.length ? Math.min(...slos) : 0,
      attainment: att.length ? round(Math.min(...att), 4) : 1, innerChanges: c.inner, outerChanges: c.outer,
      meanItersPerSec: its.length ? round(its.reduce((a, b) => a + b, 0) / its.length) : 0,
    });
  });
  const tEnd = spans.reduce((a, s) => Math.max(a, s.endUnixMs), 0);
  charts.push(fleetChart(spans, statusByGpu, Number.isFinite(t0) ? t0 : 0, tEnd));
  return { title, generatedUnixMs: Date.now(), spans: spans.length, gpus, charts };
}

function fleetChart(spans: readonly SpanRecord[], statusByGpu: Map<string, SpanRecord[]>, t0: number, tEnd: number): Chart {
  const plans = spans.filter((s) => s.name === SPAN.fleetPlan && num(s.attributes[ATTR.fleet.gpusInUse]) !== undefined);
  const xl = 'wall time since the first span (s)';
  if (plans.length) {
    const inUse: Series = { name: 'GPUs in use', x: [], y: [], step: true };
    const total: Series = { name: 'GPUs in the fleet', x: [], y: [], step: true, dashed: true };
    for (const p of plans) {
      const x = round((p.startUnixMs - t0) / 1000);
      inUse.x.push(x); inUse.y.push(num(p.attributes[ATTR.fleet.gpusInUse])!);
      const n = num(p.attributes[ATTR.fleet.gpusTotal]);
      if (n !== undefined) { total.x.push(x); total.y.push(n); }
    }
    // A plan holds until the next one: carry the last to the end of the run.
    const xEnd = round((tEnd - t0) / 1000);
    for (const s of [inUse, total]) if (s.x.length && xEnd > s.x[s.x.length - 1]!) { s.x.push(xEnd); s.y.push(s.y[s.y.length - 1]!); }
    return { id: 'fleet', title: 'fleet: GPUs in use (fleet plans)', xLabel: xl, yLabel: 'GPUs', series: total.x.length ? [thin(inUse), thin(total)] : [thin(inUse)], yMin: 0 };
  }
  // No fleet actor in this run: every GPU that reports status is in use; count them per wall second.
  const perSecond = new Map<number, Set<string>>();
  for (const [id, st] of statusByGpu) {
    for (const s of st) {
      const sec = Math.floor((s.startUnixMs - t0) / 1000);
      if (!perSecond.has(sec)) perSecond.set(sec, new Set());
      perSecond.get(sec)!.add(id);
    }
  }
  const secs = [...perSecond.keys()].sort((a, b) => a - b);
  const series: Series = { name: 'GPUs reporting', x: secs, y: secs.map((s) => perSecond.get(s)!.size), step: true };
  return { id: 'fleet', title: 'fleet: GPUs in use (no fleet plans in this run: GPUs reporting status)', xLabel: xl, yLabel: 'GPUs', series: [thin(series)], yMin: 0 };
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));

// The page draws its charts as inline SVG from the embedded data: no network, no external script.
const DRAW = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
  var W = 560, H = 220, L = 52, R = 12, T = 12, B = 38;
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function ticks(lo, hi, n) {
    var span = hi - lo || 1, step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
    return out;
  }
  function draw(chart) {
    var box = document.getElementById(chart.id);
    var xs = [], ys = [];
    chart.series.forEach(function (s) { xs = xs.concat(s.x); ys = ys.concat(s.y); });
    if (!xs.length) { box.querySelector('.note').textContent = 'no data in this run'; box.setAttribute('data-drawn', 'empty'); return; }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = chart.yMin !== undefined ? chart.yMin : Math.min.apply(null, ys);
    var y1 = chart.yMax !== undefined ? chart.yMax : Math.max.apply(null, ys) * 1.08;
    if (x1 === x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1;
    var sx = function (v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); };
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': chart.title });
    ticks(y0, y1, 4).forEach(function (v) {
      el('line', { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: 'grid' }, svg);
      el('text', { x: L - 6, y: sy(v) + 4, 'text-anchor': 'end', class: 'tick' }, svg).textContent = String(v);
    });
    ticks(x0, x1, 6).forEach(function (v) {
      el('text', { x: sx(v), y: H - B + 16, 'text-anchor': 'middle', class: 'tick' }, svg).textContent = String(v);
    });
    el('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }, svg);
    el('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }, svg);
    el('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle', class: 'label' }, svg).textContent = chart.xLabel;
    el('text', { x: 12, y: (T + H - B) / 2, 'text-anchor': 'middle', class: 'label', transform: 'rotate(-90 12 ' + (T + H - B) / 2 + ')' }, svg).textContent = chart.yLabel;
    var drawn = 0;
    chart.series.forEach(function (s, i) {
      if (!s.x.length) return;
      var d = '';
      for (var k = 0; k < s.x.length; k++) {
        var px = sx(s.x[k]).toFixed(1), py = sy(s.y[k]).toFixed(1);
        if (k === 0) d += 'M' + px + ' ' + py;
        else if (s.step) d += 'H' + px + 'V' + py;
        else d += 'L' + px + ' ' + py;
      }
      var color = COLORS[i % COLORS.length];
      el('path', { d: d, class: 'series', fill: 'none', stroke: color, 'stroke-width': s.dashed ? 1.5 : 1.8, 'stroke-dasharray': s.dashed ? '6 4' : 'none' }, svg);
      drawn++;
      var item = document.createElement('span');
      item.className = 'key';
      item.innerHTML = '<i style="background:' + color + '"></i>';
      item.appendChild(document.createTextNode(s.name));
      box.querySelector('.legend').appendChild(item);
    });
    box.insertBefore(svg, box.querySelector('.legend'));
    box.setAttribute('data-drawn', String(drawn));
  }
  data.charts.forEach(draw);
  document.body.setAttribute('data-charts-drawn', String(document.querySelectorAll('[data-drawn]').length));
})();
`;

const CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: right; } th:first-child, td:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid #ddd; border-radius: 4px; padding: 8px; }
.chart h3 { font-size: 13px; margin: 0 0 4px; }
.grid { stroke: #eee; } .axis { stroke: #888; } .tick, .label { font-size: 11px; fill: #555; }
.legend { font-size: 12px; } .key { margin-right: 12px; } .key i { display: inline-block; width: 14px; height: 3px; margin: 0 4px 3px 0; vertical-align: middle; }
.note { color: #888; font-size: 12px; }
`;

/** One self-contained HTML page (inline CSS, data and script; nothing fetched) with the charts of a run. */
export function reportHtml(d: ReportData): string {
  const json = JSON.stringify(d).replace(/</g, '\\u003c');
  const rows = d.gpus.map((g) => `<tr><td>${esc(g.gpu)}</td><td>${esc(g.policy)}</td><td>${g.sloMs}</td><td>${g.attainment.toFixed(4)}</td><td>${g.innerChanges}</td><td>${g.outerChanges}</td><td>${g.meanItersPerSec.toFixed(3)}</td></tr>`).join('\n');
  const box = (c: Chart) => `<div class="chart" id="${esc(c.id)}"><h3>${esc(c.title)}</h3><div class="legend"></div><div class="note"></div></div>`;
  const perGpu = d.gpus.map((g, i) => `<h2>${esc(g.gpu)}</h2>\n<div class="charts">${d.charts.filter((c) => c.id.startsWith(`g${i}-`)).map(box).join('')}</div>`).join('\n');
  const fleet = d.charts.filter((c) => c.id === 'fleet').map(box).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title>
<style>${CSS}</style></head>
<body>
<h1>${esc(d.title)}</h1>
<p>${d.gpus.length} GPU(s), ${d.spans} span(s); report written ${esc(new Date(d.generatedUnixMs).toISOString())}. Attainment: fraction of 1 s windows whose p99 was within the SLO (tightest service).</p>
<table><thead><tr><th>GPU</th><th>policy</th><th>SLO ms</th><th>attainment</th><th>inner changes</th><th>outer changes</th><th>mean train it/s</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Fleet</h2>
<div class="charts">${fleet}</div>
${perGpu}
<script id="report-data" type="application/json">${json}</script>
<script>${DRAW}</script>
</body></html>
`;
}
