/**
 * One policy on one simulated GPU through a scenario, without the bus: the same 200 ms latency windows,
 * window merges and decision periods as the GPU actor (actors/gpu.ts), on simulated time only, so a run
 * is deterministic for a seed and as fast as the model. `runFixed` is the same run for knobs that never
 * move (no policy, no windows), several times faster: the hindsight references search grids with it.
 */
import { createPolicy, mergeWindows, nearestRank, samePacing, summarize, type Knobs, type LatencyWindow, type PolicyName, type StepResult, type TrainingObservation } from '../../control/index.ts';
import { GpuModel, iterationMs, loadProfile, type GpuProfile } from '../../gpu/model/index.ts';
import type { Scenario } from './scenarios.ts';

/** One second of a run. */
export interface SecondRow {
  t: number;
  /** Finished requests in the second; 0 means p99Ms and meanMs are undefined (no sample). */
  count: number;
  p99Ms: number;
  meanMs: number;
  /** True when requests were waiting at the end of the second: with count 0, a second that missed. */
  waiting: boolean;
  /** Arrival rate offered in the second, requests per second. */
  rateRps: number;
  /** Fraction of time training sleeps (duty, or per-iteration sleep / (sleep + iteration)). */
  sleepDuty: number;
  mpsSharePct: number;
  trainingRunning: boolean;
  /** Training iterations completed in the second (fractional progress counts). */
  itersPerSec: number;
}

export interface RunResult {
  /** Policy name as the bench reports it (a hindsight reference or tuned baseline included). */
  policy: string;
  scenario: string;
  /** The plant's profile name. */
  profile: string;
  sloMs: number;
  durationS: number;
  seconds: SecondRow[];
  /** Requests finished over the run. */
  completions: number;
  /** MPS share changes (each restarts training). */
  mpsRestarts: number;
  sleepChanges: number;
  /** Inference MPS share changes (each restarts inference). */
  inferenceRestarts: number;
  /** Training iterations completed over the run. */
  iterations: number;
  /** GPUs the policy occupies: 2 for no-colocation (training on its own GPU), else 1. */
  gpus: number;
  /** Fixed knobs (hindsight references) or tuned option values, for the record. */
  setting?: Record<string, number | string | boolean>;
}

export const WINDOW_MS = 200;
const ITER_RATE_WINDOW_MS = 5_000;

/** The scenario's plant: a built-in profile name or a profile file (see gpu/model). */
export function scenarioProfile(s: Scenario): GpuProfile {
  return loadProfile(s.profile);
}

/** The model for a scenario with the given starting knobs. */
function buildModel(s: Scenario, profile: GpuProfile, seed: number, knobs: Knobs): GpuModel {
  const first = s.schedule[0]!;
  const model = new GpuModel({
    profile, seed,
    services: [{ id: 'svc', batch: first.batch, rateRps: first.rateRps, arrival: s.arrival }],
    trainings: [{ id: 'job', mpsSharePct: knobs.mpsSharePct, pacing: knobs.pacing, running: knobs.trainingRunning }],
    // Inference starts at the policy's share: no restart at time 0.
    inferenceSharePct: knobs.inferenceSharePct ?? 100,
  });
  return model;
}

/** Per-second accounting shared by the policy loop and the fixed runner, so both score identically. */
class Seconds {
  readonly rows: SecondRow[] = [];
  private lat: number[] = [];
  private arrivals = 0;
  private progressAtStart = 0;
  private sleep = 0;
  private share = 0;
  private samples = 0;

  constructor(private readonly profile: GpuProfile) {}

  /** One 200 ms step: its completions and arrivals, and the knobs in force. */
  step(latencies: readonly { latencyMs: number }[], arrivals: number, knobs: Knobs): void {
    for (const c of latencies) this.lat.push(c.latencyMs);
    this.arrivals += arrivals;
    this.sleep += knobs.trainingRunning ? sleepFraction(this.profile, knobs) : 1;
    this.share += knobs.mpsSharePct;
    this.samples++;
  }

  /** Closes the second ending at tMs. */
  close(tMs: number, progress: number, inSystem: number, trainingRunning: boolean): void {
    const sorted = this.lat.sort((a, b) => a - b);
    const n = sorted.length;
    let sum = 0;
    for (const v of sorted) sum += v;
    this.rows.push({
      t: tMs / 1000 - 1, count: n,
      p99Ms: nearestRank(sorted, 99),
      meanMs: n > 0 ? sum / n : 0,
      waiting: inSystem > 0,
      rateRps: this.arrivals,
      sleepDuty: this.sleep / this.samples,
      mpsSharePct: this.share / this.samples,
      trainingRunning,
      itersPerSec: progress - this.progressAtStart,
    });
    this.lat = [];
    this.arrivals = 0;
    this.progressAtStart = progress;
    this.sleep = 0;
    this.share = 0;
    this.samples = 0;
  }
}

/** Applies the schedule's load changes due by the window that starts at tMs - WINDOW_MS. */
function loadStepper(s: Scenario, model: GpuModel): (tMs: number) => void {
  let next = 1;
  return (tMs) => {
    // Load changes take effect at the first window boundary at or after their time.
    while (next < s.schedule.length && s.schedule[next]!.tS * 1000 <= tMs - WINDOW_MS) {
      const pt = s.schedule[next++]!;
      model.setArrivalRate('svc', pt.rateRps);
      model.setBatch('svc', pt.batch);
    }
  };
}

/**
 * Runs `policy` through `s` with `seed`; `options` are the policy's own (see control/). `observe`, when given, sees
 * every step of the policy (its tier, the time, what it returned) before it is applied: tests read decisions and
 * state from it.
 */
export function simulate(
  s: Scenario, policy: PolicyName, seed: number, options: Record<string, unknown> = {}, label: string = policy,
  observe?: (tier: 'inner' | 'outer', nowMs: number, step: StepResult<unknown>) => void,
): RunResult {
  const profile = scenarioProfile(s);
  const p = createPolicy(policy, options as never);
  let state = p.initialState();
  let knobs: Knobs = p.initialKnobs();
  const model = buildModel(s, profile, seed, knobs);
  let mpsRestarts = 0;
  let sleepChanges = 0;
  let inferenceRestarts = 0;
  const apply = (next: StepResult<unknown>) => {
    const k = next.knobs;
    if (k.mpsSharePct !== knobs.mpsSharePct) { mpsRestarts++; model.setMpsShare('job', k.mpsSharePct); }
    if (!samePacing(k.pacing, knobs.pacing)) { sleepChanges++; model.setPacing('job', k.pacing); }
    if (k.trainingRunning !== knobs.trainingRunning) model.setTrainingRunning('job', k.trainingRunning);
    if ((k.inferenceSharePct ?? 100) !== (knobs.inferenceSharePct ?? 100)) { inferenceRestarts++; model.setInferenceShare(k.inferenceSharePct ?? 100); }
    state = next.state;
    knobs = k;
  };

  let inner: LatencyWindow[] = [];
  let outer: LatencyWindow[] = [];
  let nextInner = p.innerPeriodMs;
  let nextOuter = p.outerPeriodMs;
  const durationMs = Math.round(s.durationS * 1000);
  const stepLoad = loadStepper(s, model);
  const iterHistory: { t: number; progress: number }[] = [{ t: 0, progress: 0 }];
  const seconds = new Seconds(profile);
  let completions = 0;

  for (let t = WINDOW_MS; t <= durationMs; t += WINDOW_MS) {
    stepLoad(t);
    model.advanceTo(t);
    const taken = model.takeCompletions('svc');
    completions += taken.completions.length;
    // The GPU actor's latency window (actors/inference.ts summarizes the same way).
    const latency = summarize('svc', s.sloMs, taken.completions.map((c) => c.latencyMs), taken.arrivals, WINDOW_MS);
    inner.push(latency);
    outer.push(latency);

    const progress = model.trainingProgress('job');
    iterHistory.push({ t, progress });
    while (iterHistory.length > 2 && iterHistory[1]!.t <= t - ITER_RATE_WINDOW_MS) iterHistory.shift();
    const h0 = iterHistory[0]!;
    const status = model.trainingStatus('job');
    const trainings: TrainingObservation[] = [{
      jobId: 'job', running: status.state === 'running',
      itersPerSec: t > h0.t ? ((progress - h0.progress) * 1000) / (t - h0.t) : 0,
    }];
    if (t >= nextInner) {
      nextInner += p.innerPeriodMs;
      const step = p.inner(state, { nowMs: t, services: [mergeWindows(inner)], trainings, knobs });
      observe?.('inner', t, step);
      apply(step);
      inner = [];
    }
    if (t >= nextOuter) {
      nextOuter += p.outerPeriodMs;
      const step = p.outer(state, { nowMs: t, services: [mergeWindows(outer)], trainings, knobs });
      observe?.('outer', t, step);
      apply(step);
      outer = [];
    }
    seconds.step(taken.completions, taken.arrivals, knobs);
    if (t % 1000 === 0) seconds.close(t, progress, model.serviceStats('svc').inSystem, knobs.trainingRunning);
  }
  return {
    policy: label, scenario: s.name, profile: profile.name, sloMs: s.sloMs, durationS: durationMs / 1000, seconds: seconds.rows,
    completions, mpsRestarts, sleepChanges, inferenceRestarts, iterations: model.trainingProgress('job'), gpus: 1,
  };
}

export interface FixedRunOptions {
  /** Stop early (and return null) once more than this many scored seconds have missed. */
  missBudget?: number;
  /** Seconds before this are not counted against missBudget (the scored warm-up). */
  warmupS?: number;
}

/**
 * The scenario under knobs that never move, scored second by second exactly as `simulate` scores a fixed
 * policy (same model, same 200 ms steps), without policy calls or latency windows. Null when the run
 * was stopped early by `missBudget`.
 */
export function runFixed(s: Scenario, knobs: Knobs, seed: number, label: string, options: FixedRunOptions = {}): RunResult | null {
  const profile = scenarioProfile(s);
  const model = buildModel(s, profile, seed, knobs);
  const durationMs = Math.round(s.durationS * 1000);
  const stepLoad = loadStepper(s, model);
  const seconds = new Seconds(profile);
  const budget = options.missBudget ?? Infinity;
  const warmupS = options.warmupS ?? 0;
  let completions = 0;
  let misses = 0;
  for (let t = WINDOW_MS; t <= durationMs; t += WINDOW_MS) {
    stepLoad(t);
    model.advanceTo(t);
    const taken = model.takeCompletions('svc');
    completions += taken.completions.length;
    seconds.step(taken.completions, taken.arrivals, knobs);
    if (t % 1000 === 0) {
      seconds.close(t, model.trainingProgress('job'), model.serviceStats('svc').inSystem, knobs.trainingRunning);
      const row = seconds.rows[seconds.rows.length - 1]!;
      if (row.t >= warmupS && secondMissed(row, s.sloMs) && ++misses > budget) return null;
    }
  }
  const setting: Record<string, number | boolean> = { mpsSharePct: knobs.mpsSharePct, trainingRunning: knobs.trainingRunning };
  if (knobs.pacing.mode === 'duty') setting.duty = knobs.pacing.duty;
  else setting.sleepMs = knobs.pacing.sleepMs;
  return {
    policy: label, scenario: s.name, profile: profile.name, sloMs: s.sloMs, durationS: durationMs / 1000, seconds: seconds.rows,
    completions, mpsRestarts: 0, sleepChanges: 0, inferenceRestarts: 0, iterations: model.trainingProgress('job'), gpus: 1, setting,
  };
}

/** A second counts against the SLO when its p99 is over it, or when requests waited and none finished. */
export function secondMissed(w: SecondRow, sloMs: number): boolean {
  return w.count > 0 ? w.p99Ms > sloMs : w.waiting;
}

/** A second is scored when a request finished in it or waited through it. */
export function secondScored(w: SecondRow): boolean {
  return w.count > 0 || w.waiting;
}

/** Fraction of time a training job sleeps under these knobs. */
function sleepFraction(profile: GpuProfile, k: Knobs): number {
  if (k.pacing.mode === 'duty') return k.pacing.duty;
  const iter = iterationMs(profile, k.mpsSharePct, true);
  return k.pacing.sleepMs / (k.pacing.sleepMs + iter);
}

/**
 * Training iterations per second of the job alone on a GPU of its own (what no-colocation's second GPU
 * delivers), measured on the model with no inference.
 */
export function trainingAloneItersPerSec(profile: string, seed: number, durationS = 60): number {
  const model = new GpuModel({ profile: loadProfile(profile), seed, services: [], trainings: [{ id: 'job' }] });
  model.advanceTo(durationS * 1000);
  return model.trainingProgress('job') / durationS;
}
