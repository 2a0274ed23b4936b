#!/usr/bin/env node
// Summarises host-runner trace files (gpucolo host --trace-file) into one markdown table, one row per policy:
//   node deploy/gpu-host/summarize.mjs POLICY=TRACE.jsonl [POLICY=TRACE.jsonl ...] > control.md
// Plain Node, no dependencies: it runs on a GPU host that carries no node_modules. It reads the status spans
// (gpucolo.gpu.status, one per status period) and the decision spans (gpucolo.decision.inner|outer|safety).
import fs from 'node:fs';

const rows = [];
for (const arg of process.argv.slice(2)) {
  const eq = arg.indexOf('=');
  if (eq <= 0) { process.stderr.write(`summarize: argument ${JSON.stringify(arg)} is not POLICY=FILE\n`); process.exit(2); }
  const policy = arg.slice(0, eq), file = arg.slice(eq + 1);
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch (err) { rows.push({ policy, missing: err.message }); continue; }
  const spans = text.split('\n').filter(Boolean).flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } });
  const status = spans.filter((s) => s.name === 'gpucolo.gpu.status').sort((a, b) => (a.attributes['gpucolo.device_ms'] ?? 0) - (b.attributes['gpucolo.device_ms'] ?? 0));
  const p99 = [], its = [], share = [], duty = [];
  let slo = NaN, attainment = NaN, within = 0, periods = 0;
  for (const s of status) {
    const a = s.attributes;
    const ps = a['gpucolo.service.p99_ms'] ?? [], ss = a['gpucolo.service.slo_ms'] ?? [];
    // The tightest service of the GPU: the largest p99 over its SLO.
    let worst = -1, k = -1;
    ps.forEach((p, i) => { if (typeof p === 'number' && p > 0 && ss[i] > 0 && p / ss[i] > worst) { worst = p / ss[i]; k = i; } });
    if (k >= 0) { p99.push(ps[k]); slo = ss[k]; periods++; if (ps[k] <= ss[k]) within++; }
    if (typeof a['gpucolo.training.its'] === 'number') its.push(a['gpucolo.training.its']);
    if (typeof a['gpucolo.mps_share_pct'] === 'number') share.push(a['gpucolo.mps_share_pct']);
    if (typeof a['gpucolo.sleep_duty'] === 'number') duty.push(a['gpucolo.sleep_duty']);
    const att = a['gpucolo.service.attainment'];
    if (Array.isArray(att) && att.length) attainment = Math.min(...att);
  }
  const dec = (tier) => spans.filter((s) => s.name === `gpucolo.decision.${tier}`).length;
  rows.push({ policy, periods, within, p99, slo, attainment, its, share, duty, inner: dec('inner'), outer: dec('outer'), safety: dec('safety') });
}

const q = (xs, p) => { if (!xs.length) return NaN; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]; };
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const out = [
  '| policy | status periods | p99 within SLO | SLO attainment (windows) | p99 median / max (ms) | SLO (ms) | training it/s (mean) | MPS share mean (%) | sleep duty mean | inner / outer / safety decisions |',
  '|---|---|---|---|---|---|---|---|---|---|',
];
for (const r of rows) {
  if (r.missing) { out.push(`| ${r.policy} | no trace: ${r.missing} | | | | | | | | |`); continue; }
  out.push(`| ${r.policy} | ${r.periods} | ${r.periods ? f((100 * r.within) / r.periods) + '%' : 'n/a'} | ${f(100 * r.attainment)}% | ${f(q(r.p99, 0.5), 2)} / ${f(r.p99.length ? Math.max(...r.p99) : NaN, 2)} | ${f(r.slo, 0)} | ${f(mean(r.its), 2)} | ${f(mean(r.share), 0)} | ${f(mean(r.duty), 2)} | ${r.inner} / ${r.outer} / ${r.safety} |`);
}
process.stdout.write(`${out.join('\n')}\n`);
