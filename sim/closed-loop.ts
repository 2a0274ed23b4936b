/**
 * One co-located GPU under a constant load, settled by the control law the host runner ships: the policy is
 * built by name from control/ (createPolicy) and run in closed loop on gpu/model's per-request simulation,
 * with the GPU actor's 200 ms latency windows, window merges and decision periods (as bench/control does),
 * for a warm-up and then a measured stretch. What the fleet simulator reads off is measured on that run:
 * the p99 and mean latency of every request finished in the measured stretch and the training progress
 * over it, relative to the job alone on the GPU. A better controller in control/ changes these numbers
 * without a second copy of it here.
 *
 * The GPU type enters as the inference batch time divided by the type's speed (as in physics.ts); a
 * training job's demand (the fraction of a GPU it uses alone) caps the MPS share the job can use: the
 * policy's share knob is applied as min(knob, 100 x demand), and every change of the knob restarts the
 * job (gpu/model's restart cost), whether or not the job can use the new share.
 */
import { createPolicy, mergeWindows, nearestRank, samePacing, summarize, type Knobs, type LatencyWindow, type PolicyName, type StepResult } from '../control/index.ts';
import { GpuModel, trainingSpeed, type GpuProfile } from '../gpu/model/index.ts';

export interface ClosedLoopCase {
  profile: GpuProfile;
  policy: PolicyName;
  sloMs: number;
  batch: number;
  /** GPU speed relative to the profile's GPU (batch time divided by it). */
  speed: number;
  /** Inference busy fraction alone on this GPU. */
  rho: number;
  /** Total training demand on the GPU (0..1]. */
  demand: number;
  seed: number;
  warmupS: number;
  measureS: number;
}

export interface ClosedLoopResult {
  p99Ms: number;
  meanMs: number;
  /** Training progress over the measured stretch / progress of the job alone on the GPU at its demand. */
  trainingSpeed: number;
  /** Fraction of measured 1 s windows whose p99 met the SLO (windows with no request count as met unless requests waited). */
  attainment: number;
  /** Mean sleep fraction and the share knob at the end (for the record). */
  sleepDuty: number;
  sharePct: number;
  restarts: number;
}

const WINDOW_MS = 200;
const ITER_RATE_WINDOW_MS = 5_000;

/** The profile with the inference batch time divided by `speed` (a faster or slower GPU of the same shape). */
export function scaledProfile(profile: GpuProfile, speed: number): GpuProfile {
  if (speed === 1) return profile;
  return { ...profile, inference: { ...profile.inference, fixedMs: profile.inference.fixedMs / speed, perItemMs: profile.inference.perItemMs / speed } };
}

/** Runs the case; see the file comment. */
export function closedLoop(c: ClosedLoopCase): ClosedLoopResult {
  const profile = scaledProfile(c.profile, c.speed);
  const p = createPolicy(c.policy);
  let state = p.initialState();
  let knobs: Knobs = p.initialKnobs();
  const cap = Math.max(1, Math.min(100, Math.round(100 * c.demand)));
  const eff = (k: Knobs) => Math.min(cap, Math.max(1, Math.round(k.mpsSharePct)));
  const batchMs = profile.inference.fixedMs + profile.inference.perItemMs * c.batch;
  const rateRps = (c.rho / batchMs) * 1000;
  const model = new GpuModel({
    profile, seed: c.seed,
    services: [{ id: 'svc', batch: c.batch, rateRps, arrival: 'poisson' }],
    trainings: [{ id: 'job', mpsSharePct: eff(knobs), pacing: knobs.pacing, running: knobs.trainingRunning }],
    inferenceSharePct: knobs.inferenceSharePct ?? 100,
  });
  let restarts = 0;
  const apply = (next: StepResult<unknown>) => {
    const k = next.knobs;
    if (k.mpsSharePct !== knobs.mpsSharePct) { restarts++; model.setMpsShare('job', eff(k)); }
    if (!samePacing(k.pacing, knobs.pacing)) model.setPacing('job', k.pacing);
    if (k.trainingRunning !== knobs.trainingRunning) model.setTrainingRunning('job', k.trainingRunning);
    if ((k.inferenceSharePct ?? 100) !== (knobs.inferenceSharePct ?? 100)) model.setInferenceShare(k.inferenceSharePct ?? 100);
    state = next.state;
    knobs = k;
  };
  let inner: LatencyWindow[] = [];
  let outer: LatencyWindow[] = [];
  let nextInner = p.innerPeriodMs, nextOuter = p.outerPeriodMs;
  const warmMs = c.warmupS * 1000, endMs = warmMs + c.measureS * 1000;
  const hist: { t: number; progress: number }[] = [{ t: 0, progress: 0 }];
  const measured: number[] = [];
  let second: number[] = [];
  let met = 0, scored = 0, sleepSum = 0, sleepN = 0, progressAtWarm = 0;
  for (let t = WINDOW_MS; t <= endMs; t += WINDOW_MS) {
    model.advanceTo(t);
    const taken = model.takeCompletions('svc');
    const lat = taken.completions.map((x) => x.latencyMs);
    const w = summarize('svc', c.sloMs, lat, taken.arrivals, WINDOW_MS);
    inner.push(w); outer.push(w);
    const progress = model.trainingProgress('job');
    hist.push({ t, progress });
    while (hist.length > 2 && hist[1]!.t <= t - ITER_RATE_WINDOW_MS) hist.shift();
    const h0 = hist[0]!;
    const trainings = [{ jobId: 'job', running: model.trainingStatus('job').state === 'running', itersPerSec: t > h0.t ? ((progress - h0.progress) * 1000) / (t - h0.t) : 0 }];
    if (t >= nextInner) { nextInner += p.innerPeriodMs; apply(p.inner(state, { nowMs: t, services: [mergeWindows(inner)], trainings, knobs })); inner = []; }
    if (t >= nextOuter) { nextOuter += p.outerPeriodMs; apply(p.outer(state, { nowMs: t, services: [mergeWindows(outer)], trainings, knobs })); outer = []; }
    if (t === warmMs) progressAtWarm = progress;
    if (t > warmMs) {
      for (const v of lat) { measured.push(v); second.push(v); }
      if (knobs.pacing.mode === 'duty') { sleepSum += knobs.trainingRunning ? knobs.pacing.duty : 1; sleepN++; }
      if (t % 1000 === 0) {
        second.sort((a, b) => a - b);
        scored++;
        if (second.length > 0 ? nearestRank(second, 99) <= c.sloMs : model.serviceStats('svc').inSystem === 0) met++;
        second = [];
      }
    }
  }
  measured.sort((a, b) => a - b);
  let sum = 0;
  for (const v of measured) sum += v;
  const aloneIters = (c.measureS * 1000 * trainingSpeed(profile, cap, true, false)) / profile.training.iterAloneMs;
  return {
    p99Ms: measured.length > 0 ? nearestRank(measured, 99) : 0,
    meanMs: measured.length > 0 ? sum / measured.length : 0,
    trainingSpeed: Math.min(1, (model.trainingProgress('job') - progressAtWarm) / aloneIters),
    attainment: scored > 0 ? met / scored : 1,
    sleepDuty: sleepN > 0 ? sleepSum / sleepN : 0,
    sharePct: eff(knobs),
    restarts,
  };
}
