/**
 * The paper's baselines, beside ours so benchmarks compare like with like.
 *   gslice        - MPS-only SLO control (GSLICE, SoCC'20, extended to training as in the paper): GSLICE sizes
 *                   INFERENCE's MPS share, the smallest that meets its latency target, and training gets the rest.
 *                   Every 25 s, with e = (measured - target) / target and target = SLO * (1 - marginPct/100):
 *                     |e| <= deadbandPct/100: hold;
 *                     else inferenceSharePct += clamp(gainPct * e, +-maxStepPct) (rounded, at least one point),
 *                     clamped to [minInferenceSharePct, 100 - minSharePct], and mpsSharePct = 100 - inferenceSharePct.
 *                   Late: inference gets more, training less; slack: inference shrinks towards the smallest share
 *                   that still meets the target. No sleep. Every change restarts BOTH processes (each MPS client
 *                   reads its share once at start), as the paper's extension did.
 *   simple        - training at a fixed 50% MPS share, no sleep, never moves.
 *   conservative  - fixed larger share to inference: training at 25% MPS, no sleep, never moves.
 *   no-colocation - training kept off the GPU, never moves.
 * Fixed policies reassert their setting if they find the knobs elsewhere (e.g. after an actor's safety override).
 */
import { decision, hold, reassert, sharePct, trainingActive } from './common.ts';
import { pickTightest } from './tightest.ts';
import type { ControlInput, Knobs, Pacing, Policy, PolicyName, StepResult } from './types.ts';
import type { LatencyMetric } from './window.ts';

const noSleep = (): Pacing => ({ mode: 'per-iteration', sleepMs: 0 });

export interface GsliceOptions {
  metric: LatencyMetric;
  /** Target = SLO * (1 - marginPct/100). */
  marginPct: number;
  /** Control period (GSLICE: 25 s); the outer tier runs at this period. */
  periodMs: number;
  /** Cadence of the (no-op) inner calls: only how often windows are taken. */
  innerPeriodMs: number;
  /** No change while |error| is within this percent of target (GSLICE's threshold). */
  deadbandPct: number;
  /**
   * Inference share points per unit normalised error. 50: latency is nearly twice as sensitive to inference's share
   * (its own cap and training's interference both move; 1.7x at the paper testbed's operating point) as to
   * training's share alone, and at 100 the law swings between two settings 25 points apart every period on the
   * paper's testbed plant, restarting both processes each time.
   */
  gainPct: number;
  maxStepPct: number;
  /** Smallest training share: inference gets at most 100 - this. */
  minSharePct: number;
  /** Smallest inference share. */
  minInferenceSharePct: number;
  /** Inference share at start; training starts with the rest. */
  initialInferenceSharePct: number;
}

export const GSLICE_DEFAULTS: Readonly<GsliceOptions> = Object.freeze({
  metric: 'p99',
  marginPct: 0,
  periodMs: 25_000,
  innerPeriodMs: 1_000,
  deadbandPct: 5,
  gainPct: 50,
  maxStepPct: 25,
  minSharePct: 1,
  minInferenceSharePct: 1,
  initialInferenceSharePct: 50,
});

export type GsliceState = Record<string, never>;

/** Build the GSLICE baseline (defaults in GSLICE_DEFAULTS). */
export function createGslice(options: Partial<GsliceOptions> = {}): Policy<GsliceState> & { readonly options: GsliceOptions } {
  const o: GsliceOptions = { ...GSLICE_DEFAULTS, ...options };
  const maxInference = 100 - sharePct(o.minSharePct);
  const inferenceShare = (x: number) => Math.min(maxInference, sharePct(x, o.minInferenceSharePct));
  function outer(state: GsliceState, input: ControlInput): StepResult<GsliceState> {
    const pick = pickTightest(input.services, o.metric);
    if (!trainingActive(input) || !pick) return hold(state, input);
    const targetMs = pick.service.sloMs * (1 - o.marginPct / 100);
    // Positive error = late = inference needs more SMs.
    const error = (pick.measuredMs - targetMs) / targetMs;
    if (Math.abs(error) <= o.deadbandPct / 100) return hold(state, input);
    const raw = Math.max(-o.maxStepPct, Math.min(o.maxStepPct, o.gainPct * error));
    const stepPct = raw > 0 ? Math.max(1, Math.round(raw)) : Math.min(-1, Math.round(raw));
    const inference = input.knobs.inferenceSharePct ?? 100;
    const nextInference = inferenceShare(inference + stepPct);
    const training = input.knobs.mpsSharePct;
    const nextTraining = 100 - nextInference;
    if (nextInference === inference && nextTraining === training) return hold(state, input);
    const reason = error > 0
      ? `${o.metric} above target: raise inference MPS share, training gets the rest`
      : `${o.metric} below target: lower inference MPS share, training gets the rest`;
    const terms = {
      measuredMs: pick.measuredMs, targetMs, error, gain: o.gainPct,
      inferenceSharePct: nextInference, oldInferenceSharePct: inference, stepPct: nextInference - inference,
    };
    return {
      state,
      knobs: { ...input.knobs, inferenceSharePct: nextInference, mpsSharePct: nextTraining },
      // One decision per reconfiguration, on the training share (the knob every backend carries); both processes restart.
      decisions: [decision('outer', 'mpsSharePct', training, nextTraining, reason, terms, pick.service.serviceId)],
    };
  }
  const initialInference = inferenceShare(o.initialInferenceSharePct);
  return {
    name: 'gslice',
    options: o,
    innerPeriodMs: o.innerPeriodMs,
    outerPeriodMs: o.periodMs,
    initialKnobs: () => ({ mpsSharePct: 100 - initialInference, inferenceSharePct: initialInference, pacing: noSleep(), trainingRunning: true }),
    initialState: () => ({}),
    // GSLICE has no fast knob: nothing happens between its 25 s decisions.
    inner: (state, input) => hold(state, input),
    outer,
  };
}

export interface FixedOptions {
  /** Training MPS share (simple 50, conservative 25). */
  sharePct: number;
  /** Cadence of the (no-op) inner calls. */
  innerPeriodMs: number;
}

/** A policy that never adapts: the same knobs forever. */
function fixedPolicy(name: PolicyName, knobs: Knobs, innerPeriodMs: number): Policy<Record<string, never>> {
  const step = (tier: 'inner' | 'outer') => (state: Record<string, never>, input: ControlInput) => ({
    state,
    knobs,
    decisions: reassert(tier, input.knobs, knobs),
  });
  return {
    name,
    innerPeriodMs,
    outerPeriodMs: Number.POSITIVE_INFINITY,
    initialKnobs: () => ({ ...knobs, pacing: { ...knobs.pacing } }),
    initialState: () => ({}),
    inner: step('inner'),
    outer: step('outer'),
  };
}

/** `simple`: everything on one GPU, divided evenly: training MPS 50%, no sleep. */
export function createSimple(options: Partial<FixedOptions> = {}): Policy<Record<string, never>> {
  const o = { sharePct: 50, innerPeriodMs: 1_000, ...options };
  return fixedPolicy('simple', { mpsSharePct: sharePct(o.sharePct), pacing: noSleep(), trainingRunning: true }, o.innerPeriodMs);
}

/** `conservative`: a fixed larger share to inference: training MPS 25%, no sleep. */
export function createConservative(options: Partial<FixedOptions> = {}): Policy<Record<string, never>> {
  const o = { sharePct: 25, innerPeriodMs: 1_000, ...options };
  return fixedPolicy('conservative', { mpsSharePct: sharePct(o.sharePct), pacing: noSleep(), trainingRunning: true }, o.innerPeriodMs);
}

/** `no-colocation`: training never runs on an inference GPU. */
export function createNoColocation(options: Partial<Pick<FixedOptions, 'innerPeriodMs'>> = {}): Policy<Record<string, never>> {
  const o = { innerPeriodMs: 1_000, ...options };
  return fixedPolicy('no-colocation', { mpsSharePct: 100, pacing: noSleep(), trainingRunning: false }, o.innerPeriodMs);
}
