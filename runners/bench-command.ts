import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPolicyName, POLICY_NAMES, type PolicyName } from '../control/index.ts';
import { listProfiles } from '../gpu/model/index.ts';
import { chartSvg } from '../bench/control/chart.ts';
import { score, type PolicyScore } from '../bench/control/metrics.ts';
import { loadSteps, scenario, SCENARIO_NAMES, withLoad, withMeanRps, type Scenario, type ScenarioName } from '../bench/control/scenarios.ts';
import { simulate, trainingAloneItersPerSec, type RunResult } from '../bench/control/simulate.ts';
import { UsageError, numberFlag } from './errors.ts';

export interface BenchControlFlags {
  scenario: string;
  policy: string;
  profile?: string;
  load?: string;
  meanRps?: string;
  seed: string;
  out: string;
  json?: boolean;
}

/** Order of the table: the paper's baselines first, ours last. */
export const BENCH_POLICIES: readonly PolicyName[] = ['no-colocation', 'simple', 'conservative', 'gslice', 'gpucolo-paper', 'gpucolo-paper-p99', 'gpucolo'];

export interface ControlBenchResult {
  scenario: string;
  description: string;
  seed: number;
  durationS: number;
  sloMs: number;
  steps: number[];
  policies: Partial<Record<PolicyName, PolicyScore>>;
  runs: RunResult[];
}

/** Builds the scenario the flags ask for; usage errors say what to fix. */
export function benchScenario(f: Pick<BenchControlFlags, 'scenario' | 'profile' | 'load' | 'meanRps'>): Scenario {
  if (!(SCENARIO_NAMES as readonly string[]).includes(f.scenario)) {
    throw new UsageError(`--scenario must be one of ${SCENARIO_NAMES.join(', ')}, got ${JSON.stringify(f.scenario)}`);
  }
  let s = scenario(f.scenario as ScenarioName);
  if (f.profile !== undefined) {
    const profiles = listProfiles();
    if (!profiles.includes(f.profile)) throw new UsageError(`--profile must be one of ${profiles.join(', ')}, got ${JSON.stringify(f.profile)}`);
    s = { ...s, profile: f.profile };
  }
  const meanRps = f.meanRps !== undefined ? numberFlag('--mean-rps', f.meanRps, { min: 0.001, max: 1e6 }) : undefined;
  try {
    if (f.load !== undefined) s = withLoad(s, f.load, meanRps);
    else if (meanRps !== undefined) s = withMeanRps(s, meanRps);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return s;
}

/** Runs the policies through the scenario on the same seed (same arrivals) and scores them. */
export function runControlBench(s: Scenario, policies: readonly PolicyName[], seed: number, progress?: (line: string) => void): ControlBenchResult {
  const steps = loadSteps(s);
  // Inference alone on its GPU, on the same arrivals: the reference for windows no policy could meet.
  const t0 = Date.now();
  const reference = simulate(s, 'no-colocation', seed);
  const alone = trainingAloneItersPerSec(s.profile, seed);
  const runs: RunResult[] = [];
  const scores: Partial<Record<PolicyName, PolicyScore>> = {};
  for (const p of policies) {
    const t = Date.now();
    const run = p === 'no-colocation' ? reference : simulate(s, p, seed);
    runs.push(run);
    scores[p] = score(run, steps, reference, p === 'no-colocation' ? alone : undefined);
    progress?.(`${p}: ${((Date.now() - (p === 'no-colocation' ? t0 : t)) / 1000).toFixed(1)} s`);
  }
  return { scenario: s.name, description: s.description, seed, durationS: s.durationS, sloMs: s.sloMs, steps, policies: scores, runs };
}

const f3 = (x: number) => x.toFixed(3);

/** The result as a fixed-width table. */
export function benchTable(r: ControlBenchResult): string {
  const head = ['policy', 'att p99', 'att mean', 'p99/SLO p50', 'p99/SLO max', 'infer req/s', 'train it/s', 'MPS restarts', 'settle max s', 'GPUs'];
  const rows = Object.entries(r.policies).map(([name, s]) => [
    name, f3(s.attainmentP99), f3(s.attainmentMean), s.p99OverSloP50.toFixed(2), s.p99OverSloMax.toFixed(2),
    s.inferenceRps.toFixed(1), f3(s.trainingItersPerSec), String(s.mpsRestarts), s.settleSecMax.toFixed(1), String(s.gpus),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Ratios the issue's targets are stated in (training of one policy over another's). */
export function comparisons(r: ControlBenchResult): Record<string, number> {
  const p = r.policies;
  const out: Record<string, number> = {};
  const ratio = (a?: PolicyScore, b?: PolicyScore) => (a && b && b.trainingItersPerSec > 0 ? a.trainingItersPerSec / b.trainingItersPerSec : undefined);
  const set = (k: string, v: number | undefined) => { if (v !== undefined && Number.isFinite(v)) out[k] = Number(v.toFixed(4)); };
  set('gpucoloTrainingVsGslice', ratio(p.gpucolo, p.gslice));
  set('gpucoloTrainingVsPaperP99', ratio(p.gpucolo, p['gpucolo-paper-p99']));
  const paperGain = ratio(p['gpucolo-paper'], p.gslice);
  set('paperTrainingGainVsGslicePct', paperGain !== undefined ? (paperGain - 1) * 100 : undefined);
  const infGain = p['gpucolo-paper'] && p.gslice ? p['gpucolo-paper'].inferenceRps / p.gslice.inferenceRps : undefined;
  set('paperInferenceGainVsGslicePct', infGain !== undefined ? (infGain - 1) * 100 : undefined);
  return out;
}

/** `gpucolo bench control`. */
export async function benchControlCommand(f: BenchControlFlags): Promise<void> {
  const s = benchScenario(f);
  const seed = numberFlag('--seed', f.seed, { integer: true });
  let policies: readonly PolicyName[];
  if (f.policy === 'all') policies = BENCH_POLICIES;
  else if (isPolicyName(f.policy)) policies = [f.policy];
  else throw new UsageError(`--policy must be all or one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(f.policy)}`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log(`scenario ${s.name}: ${s.description}; seed ${seed}`);
  const r = runControlBench(s, policies, seed, (line) => log(`  ${line}`));
  const table = benchTable(r);
  const cmp = comparisons(r);
  const out = f.json ? log : (line: string) => process.stdout.write(`${line}\n`);
  out(table);
  const stepList = r.steps.length > 12 ? `${r.steps.slice(0, 12).map((t) => `${t.toFixed(1)} s`).join(', ')} and ${r.steps.length - 12} more` : r.steps.map((t) => `${t.toFixed(1)} s`).join(', ');
  out(`${r.steps.length} load step(s)${r.steps.length > 0 ? ` at ${stepList}` : ''}; settling time: until p99 stays within the SLO for 10 s`);
  for (const [k, v] of Object.entries(cmp)) out(`${k}: ${v}`);
  if (f.out !== 'none') {
    mkdirSync(f.out, { recursive: true });
    const file = join(f.out, `control-${s.name}${f.load ? '-load' : ''}.svg`);
    writeFileSync(file, chartSvg(`${s.name}: ${s.description} (seed ${seed})`, r.runs));
    log(`chart: ${file}`);
  }
  if (f.json) {
    const policiesJson: Record<string, PolicyScore> = {};
    for (const [k, v] of Object.entries(r.policies)) policiesJson[k] = roundScore(v);
    process.stdout.write(`${JSON.stringify({ scenario: r.scenario, description: r.description, seed, durationS: r.durationS, sloMs: r.sloMs, steps: r.steps, policies: policiesJson, comparisons: cmp })}\n`);
  }
}

function roundScore(s: PolicyScore): PolicyScore {
  const r = (x: number) => Number(x.toFixed(4));
  return {
    ...s,
    attainmentP99: r(s.attainmentP99), attainmentMean: r(s.attainmentMean), p99OverSloP50: r(s.p99OverSloP50),
    p99OverSloMax: r(s.p99OverSloMax), inferenceRps: r(s.inferenceRps), trainingItersPerSec: r(s.trainingItersPerSec),
    settleSecMax: r(s.settleSecMax), settleSec: s.settleSec.map(r),
  };
}
