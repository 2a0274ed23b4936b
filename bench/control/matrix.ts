/**
 * The control matrix: every load x every plant x seeds 1..N, each cell every policy, in parallel on worker
 * threads; one table with each cell's floor, gpucolo, the hindsight references and the best baseline that
 * meets the floor, medians and worst seeds.
 */
import { Worker } from 'node:worker_threads';
import { loadProfile } from '../../gpu/model/index.ts';
import { BASELINES, medianWorst, runCell, type CellResult } from './cell.ts';
import type { MatrixLoad } from './loads.ts';
import { alignTable } from './table.ts';
import type { Scenario } from './scenarios.ts';

export interface CellJob {
  id: number;
  scenario: Scenario;
  policies: readonly string[];
  seed: number;
  warmupS: number;
}

export interface MatrixOptions {
  loads: readonly MatrixLoad[];
  /** Profile names or files. */
  profiles: readonly string[];
  seeds: number;
  policies: readonly string[];
  warmupS: number;
  /** Worker threads; 0 or 1 = in this thread. */
  workers: number;
  progress?: (line: string) => void;
}

/** Runs every cell; results in load, profile, seed order. */
export async function runMatrix(o: MatrixOptions): Promise<CellResult[]> {
  const jobs: CellJob[] = [];
  for (const load of o.loads) {
    for (const profileRef of o.profiles) {
      const profile = loadProfile(profileRef);
      for (let seed = 1; seed <= o.seeds; seed++) {
        jobs.push({ id: jobs.length, scenario: load.build(profileRef, profile, seed), policies: o.policies, seed, warmupS: o.warmupS });
      }
    }
  }
  // Longest first, so the pool does not end waiting on one long cell.
  const order = [...jobs].sort((a, b) => b.scenario.durationS - a.scenario.durationS);
  const results = new Array<CellResult>(jobs.length);
  let done = 0;
  const report = (r: CellResult) => {
    done++;
    o.progress?.(`[${done}/${jobs.length}] ${r.scenario} x ${r.profile} seed ${r.seed}: ${(r.wallMs / 1000).toFixed(1)} s`);
  };
  if (o.workers <= 1) {
    for (const j of order) { results[j.id] = runCell(j.scenario, j.policies, j.seed, j.warmupS, undefined, false); report(results[j.id]!); }
    return results;
  }
  const workerCount = Math.min(o.workers, jobs.length);
  // A .mjs entry that registers the TypeScript loader in the worker's thread, then loads matrix-worker.ts.
  const url = new URL('./matrix-worker.mjs', import.meta.url);
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let live = workerCount;
    let failed = false;
    for (let w = 0; w < workerCount; w++) {
      const worker = new Worker(url);
      const feed = () => {
        if (failed || next >= order.length) { void worker.terminate(); return; }
        worker.postMessage(order[next++]);
      };
      worker.on('message', (m: { id: number; result?: CellResult; error?: string }) => {
        if (m.error !== undefined) { failed = true; void worker.terminate(); reject(new Error(`cell ${m.id} failed: ${m.error}`)); return; }
        results[m.id] = m.result!;
        report(m.result!);
        feed();
      });
      worker.on('error', (err) => { failed = true; reject(err); });
      worker.on('exit', () => { if (--live === 0 && !failed) resolve(); });
      feed();
    }
  });
  return results;
}

/** One row of the matrix table: one load x plant over its seeds. */
export interface MatrixRow {
  load: string;
  profile: string;
  seeds: number;
  /** Lowest floor over the seeds. */
  floorMin: number;
  gpucolo: MetricSummary;
  oracleStatic?: { trainMedian: number };
  oracleDynamic?: { trainMedian: number };
  /** gpucolo's training over oracle-static's, per seed summarised. */
  vsOracleStatic?: { median: number; worst: number };
  vsOracleDynamic?: { median: number; worst: number };
  /** The baseline with the most median training among those meeting the floor on every seed. */
  bestBaseline?: { name: string; trainMedian: number; attWorst: number };
  /** Every seed: gpucolo meets the floor. */
  meetsFloor: boolean;
  /** Every seed: gpucolo's training >= 0.9 x oracle-static. */
  meets90: boolean;
  /** Every seed: at most 12 MPS restarts per hour. */
  meetsRestarts: boolean;
}

export interface MetricSummary {
  attMedian: number;
  attWorst: number;
  trainMedian: number;
  trainWorst: number;
  restartsPerHourWorst: number;
  settleWorst: number;
}

/** Groups cells by load and plant and summarises each over its seeds. */
export function matrixRows(cells: readonly CellResult[], ours = 'gpucolo'): MatrixRow[] {
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    const k = `${c.scenario}\u0000${c.profile}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(c);
  }
  const rows: MatrixRow[] = [];
  for (const cs of groups.values()) {
    const g = cs.map((c) => c.policies[ours]).filter((x) => x !== undefined);
    const os = cs.map((c) => c.policies['oracle-static']);
    const od = cs.map((c) => c.policies['oracle-dynamic']);
    const att = medianWorst(g.map((x) => x.attainmentP99), true);
    const train = medianWorst(g.map((x) => x.trainingItersPerSec), true);
    const ratio = (ref: (typeof os)[number][]) => (ref.every((x) => x !== undefined) && g.length === cs.length
      ? medianWorst(cs.map((_, i) => ratioOf(g[i]!.trainingItersPerSec, ref[i]!.trainingItersPerSec)), true)
      : undefined);
    let bestBaseline: MatrixRow['bestBaseline'];
    for (const b of BASELINES) {
      const sc = cs.map((c) => c.policies[b]);
      if (sc.some((x) => x === undefined)) continue;
      if (!sc.every((x, i) => x!.attainmentP99 >= cs[i]!.floor)) continue;
      const tm = medianWorst(sc.map((x) => x!.trainingItersPerSec), true).median;
      if (!bestBaseline || tm > bestBaseline.trainMedian) bestBaseline = { name: b, trainMedian: tm, attWorst: medianWorst(sc.map((x) => x!.attainmentP99), true).worst };
    }
    const vsOS = ratio(os);
    rows.push({
      load: cs[0]!.scenario, profile: cs[0]!.profile, seeds: cs.length,
      floorMin: Math.min(...cs.map((c) => c.floor)),
      gpucolo: {
        attMedian: att.median, attWorst: att.worst, trainMedian: train.median, trainWorst: train.worst,
        restartsPerHourWorst: Math.max(...g.map((x) => x.mpsRestartsPerHour)),
        settleWorst: Math.max(...g.map((x) => x.settleSecMax)),
      },
      ...(os.every((x) => x) ? { oracleStatic: { trainMedian: medianWorst(os.map((x) => x!.trainingItersPerSec), true).median } } : {}),
      ...(od.every((x) => x) ? { oracleDynamic: { trainMedian: medianWorst(od.map((x) => x!.trainingItersPerSec), true).median } } : {}),
      ...(vsOS ? { vsOracleStatic: vsOS } : {}),
      ...(ratio(od) ? { vsOracleDynamic: ratio(od)! } : {}),
      ...(bestBaseline ? { bestBaseline } : {}),
      meetsFloor: g.every((x, i) => x.attainmentP99 >= cs[i]!.floor),
      meets90: vsOS ? vsOS.worst >= 0.9 : false,
      meetsRestarts: g.every((x) => x.mpsRestartsPerHour <= 12),
    });
  }
  return rows;
}

/** Training ratio; a reference that trains nothing is matched by anything (1), beaten by any training. */
function ratioOf(a: number, b: number): number {
  if (b <= 1e-9) return a <= 1e-9 ? 1 : Infinity;
  return a / b;
}

export interface MatrixSummary {
  cells: number;
  rows: number;
  /** Rows where gpucolo meets the floor / 0.9x oracle-static / the restart cap, on every seed. */
  rowsMeetingFloor: number;
  rowsMeeting90: number;
  rowsMeetingRestarts: number;
  /** Median over rows of gpucolo / oracle-static (each row's median over seeds). */
  medianVsOracleStatic: number;
  medianVsOracleDynamic: number;
  /** Worst row (worst seed) of gpucolo / oracle-static. */
  worstVsOracleStatic: number;
}

export function matrixSummary(cells: readonly CellResult[], rows: readonly MatrixRow[]): MatrixSummary {
  const med = (xs: number[]) => medianWorst(xs.filter((x) => Number.isFinite(x)), true).median;
  const vs = rows.filter((r) => r.vsOracleStatic).map((r) => r.vsOracleStatic!.median);
  const vd = rows.filter((r) => r.vsOracleDynamic).map((r) => r.vsOracleDynamic!.median);
  return {
    cells: cells.length,
    rows: rows.length,
    rowsMeetingFloor: rows.filter((r) => r.meetsFloor).length,
    rowsMeeting90: rows.filter((r) => r.meets90).length,
    rowsMeetingRestarts: rows.filter((r) => r.meetsRestarts).length,
    medianVsOracleStatic: med(vs),
    medianVsOracleDynamic: med(vd),
    worstVsOracleStatic: Math.min(...rows.filter((r) => r.vsOracleStatic).map((r) => r.vsOracleStatic!.worst)),
  };
}

const f3 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : Number.isFinite(x) ? x.toFixed(3) : 'inf');

/** The matrix as a fixed-width table. */
export function matrixTable(rows: readonly MatrixRow[]): string {
  const head = ['load', 'profile', 'floor', 'att med', 'att worst', 'train med', 'train worst', 'restarts/h max', 'static', 'dynamic', 'vs static med', 'vs static worst', 'vs dynamic med', 'best baseline (train)', 'ok'];
  const body = rows.map((r) => [
    r.load, r.profile, f3(r.floorMin), f3(r.gpucolo.attMedian), f3(r.gpucolo.attWorst), f3(r.gpucolo.trainMedian), f3(r.gpucolo.trainWorst),
    r.gpucolo.restartsPerHourWorst.toFixed(1), f3(r.oracleStatic?.trainMedian), f3(r.oracleDynamic?.trainMedian),
    f3(r.vsOracleStatic?.median), f3(r.vsOracleStatic?.worst), f3(r.vsOracleDynamic?.median),
    r.bestBaseline ? `${r.bestBaseline.name} (${f3(r.bestBaseline.trainMedian)})` : 'none meets the floor',
    `${r.meetsFloor ? 'F' : '-'}${r.meets90 ? '9' : '-'}${r.meetsRestarts ? 'R' : '-'}`,
  ]);
  return alignTable(head, body, (i) => i < 2);
}
