import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { listProfiles, loadProfile, plantFamily } from '../gpu/model/index.ts';
import {
  alignTable, BENCH_POLICIES, chartSvg, DEFAULT_WARMUP_S, isBenchPolicy, matrixLoads, matrixRows, matrixSummary,
  matrixTable, medianWorst, runCell, runMatrix, scenario, SCENARIO_NAMES, withLoad, withMeanRps, type CellResult,
  type CellScore, type PolicyScore, type Scenario, type ScenarioName,
} from '../bench/control/index.ts';
import { runtime } from './bench-fleet-command.ts';
import { UsageError, numberFlag } from './errors.ts';

export interface BenchControlFlags {
  scenario?: string;
  policy: string;
  profile?: string;
  load?: string;
  meanRps?: string;
  seed: string;
  seeds?: string;
  matrix?: string | boolean;
  fullLength?: boolean;
  workers?: string;
  warmup: string;
  out: string;
  json?: boolean;
}

export { BENCH_POLICIES };

/** A profile flag value (a built-in name or a JSON file), checked; the error lists the built-ins. */
function checkProfile(ref: string): string {
  try {
    loadProfile(ref);
  } catch (err) {
    throw new UsageError(`--profile: ${(err as Error).message} (built-in profiles: ${listProfiles().join(', ')}; or give a JSON profile file)`);
  }
  return ref;
}

/** Builds the scenario the flags ask for; usage errors say what to fix. */
export function benchScenario(f: Pick<BenchControlFlags, 'scenario' | 'profile' | 'load' | 'meanRps'>): Scenario {
  if (f.scenario === undefined || !(SCENARIO_NAMES as readonly string[]).includes(f.scenario)) {
    throw new UsageError(`--scenario must be one of ${SCENARIO_NAMES.join(', ')}, got ${JSON.stringify(f.scenario)}`);
  }
  let s = scenario(f.scenario as ScenarioName);
  if (f.profile !== undefined) s = { ...s, profile: checkProfile(f.profile) };
  const meanRps = f.meanRps !== undefined ? numberFlag('--mean-rps', f.meanRps, { min: 0.001, max: 1e6 }) : undefined;
  try {
    if (f.load !== undefined) s = withLoad(s, f.load, meanRps);
    else if (meanRps !== undefined) s = withMeanRps(s, meanRps);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return s;
}

/** `--policy`: all, or a comma-separated list of names. */
export function benchPolicies(spec: string): string[] {
  if (spec === 'all') return [...BENCH_POLICIES];
  const names = spec.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = names.filter((n) => !isBenchPolicy(n));
  if (names.length === 0 || bad.length > 0) {
    throw new UsageError(`--policy must be all or a comma-separated list of ${BENCH_POLICIES.join(', ')}; unknown: ${JSON.stringify(bad.join(',') || spec)}`);
  }
  // Table order, whatever the order asked.
  return BENCH_POLICIES.filter((p) => names.includes(p));
}

const f3 = (x: number | null) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(3));
/** Names first and free text last read left-aligned; the numbers between, right-aligned. */
const textAtEnds = (i: number, count: number) => i === 0 || i === count - 1;

/** One cell as a fixed-width table. */
export function benchTable(r: Pick<CellResult, 'policies'>): string {
  const head = ['policy', 'att p99', 'att mean', 'p99/SLO p50', 'p99/SLO max', 'infer req/s', 'train it/s', 'MPS restarts', 'settle max s', 'GPUs', 'setting'];
  const rows = Object.entries(r.policies).map(([name, s]) => [
    name, f3(s.attainmentP99), f3(s.attainmentMean), s.p99OverSloP50.toFixed(2), s.p99OverSloMax.toFixed(2),
    s.inferenceRps.toFixed(1), f3(s.trainingItersPerSec), String(s.mpsRestarts), s.settleSecMax.toFixed(1), String(s.gpus),
    settingText(s.setting),
  ]);
  return alignTable(head, rows, textAtEnds);
}

function settingText(setting: CellScore['setting']): string {
  if (!setting) return '';
  if (setting.segments === 'oracle-static throughout') return 'oracle-static throughout';
  if (typeof setting.segments === 'string') {
    const segs = setting.segments.split(' ');
    return `${segs.length} segments, ${new Set(segs).size} settings`;
  }
  return Object.entries(setting).map(([k, v]) => `${k}=${v}`).join(' ');
}


/** Ratios the issues' targets are stated in (training of one policy over another's). */
export function comparisons(r: Pick<CellResult, 'policies'>): Record<string, number> {
  const p = r.policies;
  const out: Record<string, number> = {};
  const ratio = (a?: PolicyScore, b?: PolicyScore) => (a && b && b.trainingItersPerSec > 0 ? a.trainingItersPerSec / b.trainingItersPerSec : undefined);
  const set = (k: string, v: number | undefined) => { if (v !== undefined && Number.isFinite(v)) out[k] = Number(v.toFixed(4)); };
  set('gpucoloTrainingVsOracleStatic', ratio(p.gpucolo, p['oracle-static']));
  set('gpucoloTrainingVsOracleDynamic', ratio(p.gpucolo, p['oracle-dynamic']));
  set('gpucoloTrainingVsGslice', ratio(p.gpucolo, p.gslice));
  set('gpucoloTrainingVsPaperP99', ratio(p.gpucolo, p['gpucolo-paper-p99']));
  const paperGain = ratio(p['gpucolo-paper'], p.gslice);
  set('paperTrainingGainVsGslicePct', paperGain !== undefined ? (paperGain - 1) * 100 : undefined);
  const infGain = p['gpucolo-paper'] && p.gslice ? p['gpucolo-paper'].inferenceRps / p.gslice.inferenceRps : undefined;
  set('paperInferenceGainVsGslicePct', infGain !== undefined ? (infGain - 1) * 100 : undefined);
  return out;
}

function roundScore(s: CellScore): CellScore {
  const r = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(4)) : x);
  return {
    ...s,
    attainmentP99: r(s.attainmentP99), attainmentMean: r(s.attainmentMean), p99OverSloP50: r(s.p99OverSloP50),
    p99OverSloMax: r(s.p99OverSloMax), inferenceRps: r(s.inferenceRps), trainingItersPerSec: r(s.trainingItersPerSec),
    mpsRestartsPerHour: r(s.mpsRestartsPerHour), settleSecMax: r(s.settleSecMax), settleSec: s.settleSec.map(r),
  };
}

const SUMMARY_METRICS: [keyof PolicyScore, boolean][] = [
  ['attainmentP99', true], ['attainmentMean', true], ['trainingItersPerSec', true], ['inferenceRps', true],
  ['mpsRestarts', false], ['mpsRestartsPerHour', false], ['settleSecMax', false], ['p99OverSloMax', false],
];

/** Per policy, median and worst over seeds of each metric. */
export function seedSummary(cells: readonly CellResult[]): Record<string, Record<string, { median: number; worst: number }>> {
  const out: Record<string, Record<string, { median: number; worst: number }>> = {};
  for (const p of Object.keys(cells[0]!.policies)) {
    out[p] = {};
    for (const [m, higher] of SUMMARY_METRICS) {
      const mw = medianWorst(cells.map((c) => c.policies[p]![m] as number), higher);
      out[p]![m] = { median: Number(mw.median.toFixed(4)), worst: Number(mw.worst.toFixed(4)) };
    }
  }
  return out;
}

function seedTable(cells: readonly CellResult[]): string {
  const summary = seedSummary(cells);
  const head = ['policy', 'seeds >= floor', 'att p99 med', 'att p99 worst', 'train med', 'train worst', 'restarts med', 'restarts worst', 'settle worst s'];
  const rows = Object.entries(summary).map(([p, m]) => [
    p, `${cells.filter((c) => c.policies[p]!.attainmentP99 >= c.floor).length}/${cells.length}`,
    f3(m.attainmentP99!.median), f3(m.attainmentP99!.worst), f3(m.trainingItersPerSec!.median), f3(m.trainingItersPerSec!.worst),
    String(m.mpsRestarts!.median), String(m.mpsRestarts!.worst), m.settleSecMax!.worst.toFixed(1), '',
  ]);
  return alignTable([...head, ''], rows, textAtEnds);
}

/** `gpucolo bench control`. */
export async function benchControlCommand(f: BenchControlFlags): Promise<void> {
  const policies = benchPolicies(f.policy);
  const warmupS = numberFlag('--warmup', f.warmup, { min: 0, max: 86_400 });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const out = f.json ? log : (line: string) => process.stdout.write(`${line}\n`);
  if (f.matrix !== undefined && f.matrix !== false) return matrixCommand(f, policies, warmupS, log, out);
  if (f.fullLength) throw new UsageError('--full-length applies to --matrix (a single --load runs at its own length already)');
  // Checked before the runs, not when the chart is written after them.
  if (f.out.trim() === '') throw new UsageError('--out must be a directory for the chart, or none for no chart; got an empty value');

  const s = benchScenario(f);
  let seeds: number[];
  if (f.seeds !== undefined) {
    const n = numberFlag('--seeds', f.seeds, { integer: true, min: 1, max: 1000 });
    seeds = Array.from({ length: n }, (_, i) => i + 1);
  } else {
    seeds = [numberFlag('--seed', f.seed, { integer: true })];
  }
  const profileName = loadProfile(s.profile).name;
  log(`scenario ${s.name} on ${profileName}: ${s.description}; seed${seeds.length > 1 ? `s 1-${seeds.length}` : ` ${seeds[0]}`}; first ${warmupS} s scored for no policy`);
  if (s.arrival === 'closed') log('note: closed-loop client, so arrivals depend on the policy (a faster GPU gets more requests); policies do not see the same arrivals');
  const cells: CellResult[] = [];
  for (const seed of seeds) {
    if (seeds.length > 1) log(`seed ${seed}`);
    cells.push(runCell(s, policies, seed, warmupS, (line) => log(`  ${line}`), seed === seeds[0]));
  }
  const first = cells[0]!;
  out(`floor (min(0.99, no-colocation - 0.005)): ${cells.map((c) => f3(c.floor)).join(', ')}`);
  if (seeds.length > 1) out(`seed ${first.seed}:`);
  out(benchTable(first));
  if (seeds.length > 1) {
    out(`median and worst over seeds ${seeds[0]}-${seeds[seeds.length - 1]} (worst = lowest attainment or training, most restarts, longest settling):`);
    out(seedTable(cells));
  }
  const steps = first.steps;
  const stepList = steps.length > 12 ? `${steps.slice(0, 12).map((t) => `${t.toFixed(1)} s`).join(', ')} and ${steps.length - 12} more` : steps.map((t) => `${t.toFixed(1)} s`).join(', ');
  out(`${steps.length} load step(s)${steps.length > 0 ? ` at ${stepList}` : ''}; settling time: until p99 stays within the SLO for 10 s`);
  const cmp = comparisons(first);
  for (const [k, v] of Object.entries(cmp)) out(`${k}: ${v}`);
  if (f.out !== 'none' && first.runs) {
    mkdirSync(f.out, { recursive: true });
    const file = join(f.out, `control-${s.name}${f.load ? '-load' : ''}.svg`);
    writeFileSync(file, chartSvg(`${s.name} on ${profileName}: ${s.description} (seed ${first.seed})`, first.runs));
    log(`chart: ${file}`);
  }
  if (f.json) {
    const policiesJson: Record<string, CellScore> = {};
    for (const [k, v] of Object.entries(first.policies)) policiesJson[k] = roundScore(v);
    const base = {
      scenario: s.name, description: s.description, profile: profileName, seed: first.seed, durationS: s.durationS, sloMs: s.sloMs,
      warmupS, floor: Number(first.floor.toFixed(4)), steps, closedLoop: s.arrival === 'closed', policies: policiesJson, comparisons: cmp,
    };
    const multi = seeds.length > 1
      ? { seeds, floors: cells.map((c) => Number(c.floor.toFixed(4))), summary: seedSummary(cells), perSeed: cells.map((c) => ({ seed: c.seed, floor: c.floor, policies: Object.fromEntries(Object.entries(c.policies).map(([k, v]) => [k, roundScore(v)])) })) }
      : {};
    process.stdout.write(`${JSON.stringify({ ...base, ...multi })}\n`);
  }
}

async function matrixCommand(f: BenchControlFlags, policies: string[], warmupS: number, log: (l: string) => void, out: (l: string) => void): Promise<void> {
  if (f.scenario !== undefined || f.load !== undefined || f.meanRps !== undefined) {
    throw new UsageError('--matrix runs its own loads: leave out --scenario, --load and --mean-rps (give loads as --matrix NAME,FILE,FOLDER)');
  }
  let loads;
  try {
    loads = matrixLoads(typeof f.matrix === 'string' ? f.matrix : undefined, undefined, f.fullLength === true);
  } catch (err) {
    throw new UsageError(`--matrix: ${(err as Error).message}`);
  }
  const profiles = f.profile !== undefined ? f.profile.split(',').map((x) => checkProfile(x.trim())) : plantFamily();
  const seeds = f.seeds !== undefined ? numberFlag('--seeds', f.seeds, { integer: true, min: 1, max: 1000 }) : 1;
  const workers = f.workers !== undefined ? numberFlag('--workers', f.workers, { integer: true, min: 1, max: 256 }) : availableParallelism();
  log(`matrix: ${loads.length} loads x ${profiles.length} profiles x ${seeds} seed(s) = ${loads.length * profiles.length * seeds} cells, ${policies.length} policies each, ${workers} worker(s); first ${warmupS} s scored for no policy`);
  const t0 = Date.now();
  const cells = await runMatrix({ loads, profiles, seeds, policies, warmupS, workers, progress: log });
  const rows = matrixRows(cells);
  const summary = matrixSummary(cells, rows);
  out(matrixTable(rows));
  out(`ok: F = gpucolo meets the floor on every seed, 9 = trains >= 0.9x oracle-static on every seed, R = <= 12 MPS restarts/h on every seed (share changes: training started again after gpucolo stopped it at the duty cap is charged the plant's restart time but not counted here; gpucolo's own budget counts it)`);
  out(`rows meeting the floor ${summary.rowsMeetingFloor}/${summary.rows}, >= 0.9x oracle-static ${summary.rowsMeeting90}/${summary.rows}, restarts ${summary.rowsMeetingRestarts}/${summary.rows}; median vs oracle-static ${f3(summary.medianVsOracleStatic)}, worst ${f3(summary.worstVsOracleStatic)}; median vs oracle-dynamic ${f3(summary.medianVsOracleDynamic)}`);
  // Wall time depends on the code run: the build (dist/) or the TypeScript through tsx (bin/gpucolo.mjs).
  out(`wall time ${((Date.now() - t0) / 1000).toFixed(0)} s (runtime: ${runtime()})`);
  if (f.json) {
    const cellsJson = cells.map((c) => ({ ...c, policies: Object.fromEntries(Object.entries(c.policies).map(([k, v]) => [k, roundScore(v)])) }));
    process.stdout.write(`${JSON.stringify({ matrix: { loads: loads.map((l) => l.name), profiles, seeds, warmupS, policies }, summary, rows, cells: cellsJson })}\n`);
  }
}
