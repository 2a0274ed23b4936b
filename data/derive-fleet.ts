/**
 * Derives the compact files of data/fleet/ (the fleet simulation's inputs) from the original traces; see
 * data/README.md for each file's publisher, commit, licence and derivation.
 *
 *   node --import tsx data/derive-fleet.ts [SOURCE_DIR]
 *
 * SOURCE_DIR holds the originals as published (default: ../shared/data beside the repository, or
 * $GPUCOLO_TRACE_DIR). Output is deterministic: rerunning it reproduces the committed files byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The single CSV inside a .tar.gz, as text (tar is on every machine that has the originals). */
function tarCsv(path: string): string {
  return execFileSync('tar', ['-xzOf', path], { maxBuffer: 1 << 30 }).toString('utf8');
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
}

/** v2020 machine list: GPU machines and GPUs per gpu_type (machines with cap_gpu 0 are CPU-only). */
export function gpuTypes(csv: string): string {
  const acc = new Map<string, { machines: number; gpus: number }>();
  for (const l of lines(csv)) {
    const [, type, , , capGpu] = l.split(',');
    const gpus = Number(capGpu);
    if (!type || !(gpus > 0)) continue;
    const a = acc.get(type) ?? { machines: 0, gpus: 0 };
    a.machines++;
    a.gpus += gpus;
    acc.set(type, a);
  }
  const rows = [...acc.entries()].sort((a, b) => b[1].gpus - a[1].gpus || a[0].localeCompare(b[0]));
  return `gpu_type,machines,gpus\n${rows.map(([t, a]) => `${t},${a.machines},${a.gpus}`).join('\n')}\n`;
}

/** v2023 pod list: the shape of every pod that asks for a GPU (qos, num_gpu, gpu_milli, lifetime). */
export function podShapes(csv: string): string {
  const [head, ...rest] = lines(csv);
  const cols = head!.split(',');
  const at = (name: string) => cols.indexOf(name);
  const iq = at('qos'), ing = at('num_gpu'), igm = at('gpu_milli'), ic = at('creation_time'), id = at('deletion_time');
  const out = ['qos,num_gpu,gpu_milli,duration_s'];
  for (const l of rest) {
    const f = l.split(',');
    const numGpu = Number(f[ing]);
    if (!(numGpu > 0)) continue;
    const duration = Number(f[id]) - Number(f[ic]);
    if (!Number.isFinite(duration) || duration < 0) continue;
    out.push(`${f[iq]},${numGpu},${Number(f[igm])},${Math.round(duration)}`);
  }
  return `${out.join('\n')}\n`;
}

/** v2025 DLRM trace: lifetimes of the GPU (HN) instances, app by app; empty = before/after the trace. */
export function dlrmInstances(csv: string): string {
  const [head, ...rest] = lines(csv);
  const cols = head!.split(',');
  const ir = cols.indexOf('role'), ia = cols.indexOf('app_name'), ig = cols.indexOf('gpu_request');
  const ic = cols.indexOf('creation_time'), id = cols.indexOf('deletion_time');
  const out = ['app,gpus,creation_s,deletion_s'];
  for (const l of rest) {
    const f = l.split(',');
    if (f[ir] !== 'HN' || !(Number(f[ig]) > 0)) continue;
    const t = (s: string | undefined) => (s === undefined || s === '' ? '' : String(Math.round(Number(s))));
    out.push(`${f[ia]!.replace(/^app_/, '')},${Number(f[ig])},${t(f[ic])},${t(f[id])}`);
  }
  return `${out.join('\n')}\n`;
}

/** GenAI qps: the generative-request QPS summed over containers, per 10-minute bin (mean of its samples). */
export function genaiCycle(csv: string): string {
  const [, ...rest] = lines(csv);
  const perInstant = new Map<number, number>();
  for (const l of rest) {
    const [ts, value, , type] = l.split(',');
    if (type !== 'Generative Requests') continue;
    const t = Number(ts), v = Number(value);
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    perInstant.set(t, (perInstant.get(t) ?? 0) + v);
  }
  const t0 = Math.min(...perInstant.keys());
  const bins = new Map<number, { sum: number; n: number }>();
  for (const [t, v] of perInstant) {
    const b = Math.floor((t - t0) / 600) * 600;
    const e = bins.get(b) ?? { sum: 0, n: 0 };
    e.sum += v;
    e.n++;
    bins.set(b, e);
  }
  const rows = [...bins.entries()].sort((a, b) => a[0] - b[0]);
  return `t_s,qps\n${rows.map(([b, e]) => `${b},${(e.sum / e.n).toFixed(4)}`).join('\n')}\n`;
}

/** GenAI pod_gpu_duty_cycle: mean and 95th percentile GPU utilisation (%) of each inference pod. */
export function inferenceDuty(csv: string): string {
  const [, ...rest] = lines(csv);
  const per = new Map<string, number[]>();
  for (const l of rest) {
    const [value, , pod] = l.split(',');
    const v = Number(value);
    if (!pod || !Number.isFinite(v)) continue;
    let a = per.get(pod);
    if (!a) per.set(pod, (a = []));
    a.push(v);
  }
  const rows = [...per.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([, v], i) => {
    const sorted = [...v].sort((a, b) => a - b);
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const p95 = sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)]!;
    return `${i},${v.length},${mean.toFixed(3)},${p95.toFixed(3)}`;
  });
  return `pod,samples,mean_pct,p95_pct\n${rows.join('\n')}\n`;
}

/**
 * ServeGen m-large: each client's rate per 10-minute window, relative to its own mean over the 14 days
 * (clients with no requests at all are left out). Wide: t_s then one column per client.
 */
export function servegenClients(dir: string): string {
  const files = readdirSync(dir).filter((f) => /^chunk-\d+-trace\.csv$/.test(f))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  if (files.length === 0) throw new Error(`no chunk-N-trace.csv files in ${dir}`);
  const windows = new Set<number>();
  const clients: { name: string; rates: Map<number, number> }[] = [];
  for (const f of files) {
    const rates = new Map<number, number>();
    for (const l of lines(readFileSync(join(dir, f), 'utf8'))) {
      const [t, r] = l.split(',');
      const tS = Number(t), rate = Number(r);
      if (!Number.isFinite(tS) || !Number.isFinite(rate)) throw new Error(`${f}: bad line "${l}"`);
      rates.set(tS, rate);
      windows.add(tS);
    }
    clients.push({ name: f.match(/\d+/)![0], rates });
  }
  const ts = [...windows].sort((a, b) => a - b);
  const kept = clients.filter((c) => [...c.rates.values()].some((r) => r > 0));
  const means = kept.map((c) => ts.reduce((s, t) => s + (c.rates.get(t) ?? 0), 0) / ts.length);
  const head = `t_s,${kept.map((c) => `c${c.name}`).join(',')}`;
  const body = ts.map((t) => `${t},${kept.map((c, i) => {
    const rel = (c.rates.get(t) ?? 0) / means[i]!;
    return rel === 0 ? '0' : Number(rel.toPrecision(3)).toString();
  }).join(',')}`);
  return `${head}\n${body.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('data/derive-fleet.ts')) {
  const source = resolve(process.argv[2] ?? process.env.GPUCOLO_TRACE_DIR ?? join(here, '..', '..', 'shared', 'data'));
  const ac = join(source, 'alibaba-clusterdata');
  const out = join(here, 'fleet');
  mkdirSync(out, { recursive: true });
  const files: [string, string][] = [
    ['pai-v2020-gpu-types.csv', gpuTypes(tarCsv(join(ac, 'cluster-trace-gpu-v2020', 'pai_machine_spec.tar.gz')))],
    ['openb-pod-shapes.csv', podShapes(readFileSync(join(ac, 'cluster-trace-gpu-v2023', 'openb_pod_list_default.csv'), 'utf8'))],
    ['dlrm-gpu-instances.csv', dlrmInstances(readFileSync(join(ac, 'cluster-trace-gpu-v2025', 'disaggregated_DLRM_trace.csv'), 'utf8'))],
    ['genai-qps-cycle.csv', genaiCycle(tarCsv(join(ac, 'cluster-trace-v2026-GenAI', 'qps.tar.gz')))],
    ['genai-inference-gpu-duty.csv', inferenceDuty(tarCsv(join(ac, 'cluster-trace-v2026-GenAI', 'pod_gpu_duty_cycle_anon.tar.gz')))],
    ['servegen-m-large-clients.csv', servegenClients(join(source, 'alibaba-servegen', 'language', 'm-large'))],
  ];
  for (const [name, text] of files) {
    writeFileSync(join(out, name), text);
    console.log(`${join(out, name)}: ${text.split('\n').length - 2} rows, ${(text.length / 1024).toFixed(0)} KiB`);
  }
}
