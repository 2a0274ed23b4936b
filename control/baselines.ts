/**
 * The paper's baselines, beside ours so benchmarks compare like with like.
 *   gslice        - MPS-only SLO control (GSLICE, SoCC'20, extended to training as in the paper): every 25 s the
 *                   training share moves proportionally to the normalised latency error, with a small deadband;
 *                   no sleep; every change restarts training. Inference keeps 100% (only training is capped).
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
  /** Share points per unit normalised error. */
  gainPct: number;
  maxStepPct: number;
  minSharePct: number;
  initialSharePct: number;
}

export const GSLICE_DEFAULTS: Readonly<GsliceOptions> = Object.freeze({
  metric: 'p99',
  marginPct: 0,
  periodMs: 25_000,
  innerPeriodMs: 1_000,
  deadbandPct: 5,
  gainPct: 100,
  maxStepPct: 25,
  minSharePct: 1,
  initialSharePct: 50,
});

export type GsliceState = Record<string, never>;

/** Build the GSLICE baseline (defaults in GSLICE_DEFAULTS). */
export function createGslice(options: Partial<GsliceOptions> = {}): Policy<GsliceState> & { readonly options: GsliceOptions } {
  const o: GsliceOptions = { ...GSLICE_DEFAULTS, ...options };
  function outer(state: GsliceState, input: ControlInput): StepResult<GsliceState> {
    const pick = pickTightest(input.services, o.metric);
    if (!trainingActive(input) || !pick) return hold(state, input);
    const targetMs = pick.service.sloMs * (1 - o.marginPct / 100);
    // Positive error = slack = room for more training.
    const error = (targetMs - pick.measuredMs) / targetMs;
    if (Math.abs(error) <= o.deadbandPct / 100) return hold(state, input);
    const raw = Math.max(-o.maxStepPct, Math.min(o.maxStepPct, o.gainPct * error));
    const stepPct = raw > 0 ? Math.max(1, Math.round(raw)) : Math.min(-1, Math.round(raw));
    const share = input.knobs.mpsSharePct;
    const next = sharePct(share + stepPct, o.minSharePct);
    if (next === share) return hold(state, input);
    const reason = error < 0 ? `${o.metric} above target: lower MPS share` : `${o.metric} below target: raise MPS share`;
    const terms = { measuredMs: pick.measuredMs, targetMs, error, gain: o.gainPct, stepPct: next - share };
    return {
      state,
      knobs: { ...input.knobs, mpsSharePct: next },
      decisions: [decision('outer', 'mpsSharePct', share, next, reason, terms, pick.service.serviceId)],
    };
  }
  return {
    name: 'gslice',
    options: o,
    innerPeriodMs: o.innerPeriodMs,
    outerPeriodMs: o.periodMs,
    initialKnobs: () => ({ mpsSharePct: sharePct(o.initialSharePct, o.minSharePct), pacing: noSleep(), trainingRunning: true }),
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
