/**
 * One cell of the control benchmark: every asked-for policy on one load, one plant and one seed, scored the
 * same way against the same reference (inference alone on the same arrivals).
 */
import { isPolicyName, type PolicyName } from '../../control/index.ts';
import { DEFAULT_WARMUP_S, score, type PolicyScore } from './metrics.ts';
import { attainmentFloor, oracleDynamic, oracleStatic, TUNED_BASELINES, tunedBaseline } from './oracle.ts';
import { loadSteps, type Scenario } from './scenarios.ts';
import { scenarioProfile, simulate, trainingAloneItersPerSec, type RunResult } from './simulate.ts';

/** Hindsight references, beside the policies of control/. */
export const ORACLE_NAMES = ['oracle-static', 'oracle-dynamic'] as const;
export const TUNED_NAMES = Object.keys(TUNED_BASELINES);

/** Order of the tables: no co-location, the paper's baselines (default, then tuned), the references, ours. */
export const BENCH_POLICIES: readonly string[] = [
  'no-colocation', 'simple', 'conservative', 'gslice', 'gslice-tuned', 'gpucolo-paper', 'gpucolo-paper-p99',
  'gpucolo-paper-p99-tuned', 'oracle-static', 'oracle-dynamic', 'gpucolo',
];

/** Policies a table calls baselines: what ours must beat at equal or better attainment. */
export const BASELINES: readonly string[] = ['simple', 'conservative', 'gslice', 'gslice-tuned', 'gpucolo-paper', 'gpucolo-paper-p99', 'gpucolo-paper-p99-tuned'];

export function isBenchPolicy(name: string): boolean {
  return BENCH_POLICIES.includes(name) || isPolicyName(name);
}

export interface CellScore extends PolicyScore {
  /** Fixed knobs of a hindsight reference, or the option a tuned baseline settled on. */
  setting?: Record<string, number | string | boolean>;
  /** Simulated runs the policy took (references and tuned baselines search). */
  runs?: number;
}

export interface CellResult {
  scenario: string;
  description: string;
  profile: string;
  seed: number;
  durationS: number;
  sloMs: number;
  warmupS: number;
  /** min(0.99, no-colocation attainment - 0.005): what every policy must reach. */
  floor: number;
  steps: number[];
  policies: Record<string, CellScore>;
  /** The runs, for charts (left out when the cell crosses a thread). */
  runs?: RunResult[];
  /** Wall time of the cell, ms. */
  wallMs: number;
}

/** Runs `policies` on `s` with `seed` and scores them; `progress` gets a line per policy. */
export function runCell(s: Scenario, policies: readonly string[], seed: number, warmupS = DEFAULT_WARMUP_S, progress?: (line: string) => void, keepRuns = true): CellResult {
  const t0 = Date.now();
  const steps = loadSteps(s);
  const reference = simulate(s, 'no-colocation', seed);
  const alone = trainingAloneItersPerSec(s.profile, seed);
  const floor = attainmentFloor(reference, warmupS);
  const runs: RunResult[] = [];
  const scores: Record<string, CellScore> = {};
  let staticRun: RunResult | undefined;
  const needStatic = () => (staticRun ??= oracleStatic(s, seed, reference, alone, warmupS).run);
  for (const p of policies) {
    const t = Date.now();
    let run: RunResult;
    let searched: number | undefined;
    if (p === 'no-colocation') run = reference;
    else if (p === 'oracle-static') { ({ run, runs: searched } = oracleStatic(s, seed, reference, alone, warmupS)); staticRun = run; }
    else if (p === 'oracle-dynamic') ({ run, runs: searched } = oracleDynamic(s, seed, reference, warmupS, needStatic()));
    else if (TUNED_NAMES.includes(p)) ({ run, runs: searched } = tunedBaseline(s, p, seed, reference, warmupS));
    else if (isPolicyName(p)) run = simulate(s, p as PolicyName, seed);
    else throw new Error(`unknown policy ${p}`);
    runs.push(run);
    const sc: CellScore = score(run, steps, reference, p === 'no-colocation' ? alone : undefined, warmupS);
    if (run.setting) sc.setting = run.setting;
    if (searched !== undefined) sc.runs = searched;
    scores[p] = sc;
    progress?.(`${p}: ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const profile = scenarioProfile(s).name;
  return {
    scenario: s.name, description: s.description, profile, seed, durationS: s.durationS, sloMs: s.sloMs, warmupS, floor,
    steps, policies: scores, ...(keepRuns ? { runs } : {}), wallMs: Date.now() - t0,
  };
}

/** Median (upper median of an even count) and worst of a metric over seeds. */
export function medianWorst(values: readonly number[], higherIsBetter: boolean): { median: number; worst: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const worst = sorted.length === 0 ? NaN : higherIsBetter ? sorted[0]! : sorted[sorted.length - 1]!;
  return { median, worst };
}
