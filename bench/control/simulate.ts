/**
 * One policy on one simulated GPU through a scenario, without the bus: the same 200 ms latency windows,
 * window merges and decision periods as the GPU actor (actors/gpu.ts), on simulated time only, so a run
 * is deterministic for a seed and as fast as the model.
 */
import { summarizePeriod, type InferenceContext } from '../../actors/inference.ts';
import { emptySecondWindows } from '../../actors/latency-seconds.ts';
import { createPolicy, mergeWindows, nearestRank, pacingValue, type Knobs, type LatencyWindow, type PolicyName, type StepResult, type TrainingObservation } from '../../control/index.ts';
import { GpuModel, iterationMs, loadProfile, type GpuProfile } from '../../gpu/model/index.ts';
import type { Scenario } from './scenarios.ts';

/** One second of a run. */
export interface SecondRow {
  t: number;
  /** Finished requests in the second; 0 means p99Ms and meanMs are undefined (no sample). */
  count: number;
  p99Ms: number;
  meanMs: number;
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
  policy: PolicyName;
  scenario: string;
  sloMs: number;
  durationS: number;
  seconds: SecondRow[];
  /** Requests finished over the run. */
  completions: number;
  /** MPS share changes (each restarts training). */
  mpsRestarts: number;
  sleepChanges: number;
  /** Training iterations completed over the run. */
  iterations: number;
  /** GPUs the policy occupies: 2 for no-colocation (training on its own GPU), else 1. */
  gpus: number;
}

const WINDOW_MS = 200;
const ITER_RATE_WINDOW_MS = 5_000;

/** Runs `policy` through `s` with `seed`; `options` are the policy's own (see control/). */
export function simulate(s: Scenario, policy: PolicyName, seed: number, options: Record<string, unknown> = {}): RunResult {
  const profile = loadProfile(s.profile);
  const p = createPolicy(policy, options as never);
  let state = p.initialState();
  let knobs: Knobs = p.initialKnobs();
  const first = s.schedule[0]!;
  const model = new GpuModel({
    profile, seed,
    services: [{ id: 'svc', batch: first.batch, rateRps: first.rateRps, arrival: s.arrival }],
    trainings: [{ id: 'job', mpsSharePct: knobs.mpsSharePct, pacing: knobs.pacing, running: knobs.trainingRunning }],
  });
  let mpsRestarts = 0;
  let sleepChanges = 0;
  const apply = (next: StepResult<unknown>) => {
    const k = next.knobs;
    if (k.mpsSharePct !== knobs.mpsSharePct) { mpsRestarts++; model.setMpsShare('job', k.mpsSharePct); }
    if (pacingValue(k.pacing) !== pacingValue(knobs.pacing) || k.pacing.mode !== knobs.pacing.mode) { sleepChanges++; model.setPacing('job', k.pacing); }
    if (k.trainingRunning !== knobs.trainingRunning) model.setTrainingRunning('job', k.trainingRunning);
    state = next.state;
    knobs = k;
  };

  let inference: InferenceContext = {
    host: 'bench', gpu: 'gpu0', serviceId: 'svc', sloMs: s.sloMs, rateRps: first.rateRps, periodMs: WINDOW_MS,
    seq: 0, lastTMs: -1, seconds: emptySecondWindows(), histogram: {},
  };
  let inner: LatencyWindow[] = [];
  let outer: LatencyWindow[] = [];
  let nextInner = p.innerPeriodMs;
  let nextOuter = p.outerPeriodMs;
  const durationMs = Math.round(s.durationS * 1000);
  let nextPoint = 1;
  const iterHistory: { t: number; progress: number }[] = [{ t: 0, progress: 0 }];

  const seconds: SecondRow[] = [];
  let secLat: number[] = [];
  let secArrivals = 0;
  let secProgress = 0;
  let secSleep = 0;
  let secShare = 0;
  let secSamples = 0;
  let completions = 0;

  for (let t = WINDOW_MS; t <= durationMs; t += WINDOW_MS) {
    // Load changes take effect at the first window boundary at or after their time.
    while (nextPoint < s.schedule.length && s.schedule[nextPoint]!.tS * 1000 <= t - WINDOW_MS) {
      const pt = s.schedule[nextPoint++]!;
      model.setArrivalRate('svc', pt.rateRps);
      model.setBatch('svc', pt.batch);
    }
    model.advanceTo(t);
    const taken = model.takeCompletions('svc');
    completions += taken.completions.length;
    for (const c of taken.completions) secLat.push(c.latencyMs);
    secArrivals += taken.arrivals;
    const { report, seconds: sw, histogram } = summarizePeriod(inference, { type: 'SAMPLES', tMs: t, completions: taken.completions, arrivals: taken.arrivals });
    inference = { ...inference, seq: report.seq, lastTMs: t, seconds: sw, histogram };
    const { seq: _s, tMs: _t, sloWindows: _w, sloWindowsMet: _m, runP99Ms: _r, ...latency } = report;
    inner.push({ ...latency, serviceId: 'svc' });
    outer.push({ ...latency, serviceId: 'svc' });

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
      apply(p.inner(state, { nowMs: t, services: [mergeWindows(inner)], trainings, knobs }));
      inner = [];
    }
    if (t >= nextOuter) {
      nextOuter += p.outerPeriodMs;
      apply(p.outer(state, { nowMs: t, services: [mergeWindows(outer)], trainings, knobs }));
      outer = [];
    }
    secSleep += knobs.trainingRunning ? sleepFraction(profile, knobs) : 1;
    secShare += knobs.mpsSharePct;
    secSamples++;
    if (t % 1000 === 0) {
      const sorted = secLat.sort((a, b) => a - b);
      const n = sorted.length;
      const sum = sorted.reduce((a, b) => a + b, 0);
      seconds.push({
        t: t / 1000 - 1, count: n,
        p99Ms: nearestRank(sorted, 99),
        meanMs: n > 0 ? sum / n : 0,
        rateRps: secArrivals,
        sleepDuty: secSleep / secSamples,
        mpsSharePct: secShare / secSamples,
        trainingRunning: knobs.trainingRunning,
        itersPerSec: progress - secProgress,
      });
      secLat = [];
      secArrivals = 0;
      secProgress = progress;
      secSleep = 0;
      secShare = 0;
      secSamples = 0;
    }
  }
  return {
    policy, scenario: s.name, sloMs: s.sloMs, durationS: durationMs / 1000, seconds, completions, mpsRestarts, sleepChanges,
    iterations: model.trainingProgress('job'), gpus: 1,
  };
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
export function trainingAloneItersPerSec(profileName: string, seed: number, durationS = 60): number {
  const model = new GpuModel({ profile: loadProfile(profileName), seed, services: [], trainings: [{ id: 'job' }] });
  model.advanceTo(durationS * 1000);
  return model.trainingProgress('job') / durationS;
}
