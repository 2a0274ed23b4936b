/**
 * `gpucolo-paper`: the GPUColo paper's controller (Chen et al., ICDCS 2024), as written.
 *
 * Inner loop, every 4 s: controlled variable l = MEAN latency of the period, knob s = sleep after each training
 * iteration (ms). Identified model l(k) = m*s(k) + n, so l(k+1) = l(k) + m*u(k), and the controller
 *     u(k) = (Lref - l(k)) / m,    s(k+1) = s(k) + u(k),    s clamped to [0, maxSleepMs = 1000]
 * with Lref = SLO. Sign: more sleep means less interference, so LOWER latency: m < 0. Latency above Lref gives
 * Lref - l < 0, divided by m < 0 gives u > 0: sleep more. The law is pure integral action (s accumulates u),
 * hence zero steady-state error on a linear plant; clamping s is the anti-windup.
 *
 * Outer loop, every 100 s: the same law on the training MPS share p with l = mMps*p + n' (mMps > 0: more
 * training SMs, higher latency): p += (Lref - l) / mMps, clamped to [1, 100], acting only when
 * |l - Lref| > 2% of Lref. With the inner loop settled in between, the outer loop acts exactly when the inner
 * one is saturated (sleep at 0 with slack, or at 1 s and still late), which is how the paper decouples them.
 *
 * Defaults for m come from the paper's RTX 3090 numbers, made relative so they scale with the SLO:
 *   sleep 0.2 -> 0.8 s moved latency 7.95 -> 6.2 ms:  m    = -1.75 / 600 / 7.95  = -3.67e-4 * Lref per ms of sleep
 *   MPS 80 -> 20 % moved latency 15.1 -> 5.62 ms:     mMps =  9.48 / 60  / 15.1  =  1.05e-2 * Lref per percent
 * Pass mMsPerMs / mMpsMsPerPct to use slopes identified on your own system. Online re-identification of m
 * (rls.ts: least squares on l = m*s + n with forgetting, updated only on periods where the sleep moved by at
 * least minExcitationMs, and used only while it has the right sign and lies within 10x of the prior) exists
 * but is OFF by default: the paper identifies offline.
 * Where the paper is silent we hold: while training is not running (restart) or a window has no requests.
 */
import { clamp, decision, hold, roundTo, sharePct, trainingActive, withSleepMs } from './common.ts';
import { linePrior, lineUpdate, type LineEstimate } from './rls.ts';
import { pickTightest } from './tightest.ts';
import type { ControlInput, Knobs, Policy, StepResult } from './types.ts';
import type { LatencyMetric } from './window.ts';

export interface PaperOptions {
  /** 'mean' is the paper; 'p99' gives the gpucolo-paper-p99 variant. */
  metric: LatencyMetric;
  /** Lref = SLO * (1 - marginPct/100); the paper uses 0. */
  marginPct: number;
  innerPeriodMs: number;
  outerPeriodMs: number;
  maxSleepMs: number;
  initialSleepMs: number;
  initialSharePct: number;
  minSharePct: number;
  /** Inner slope dl/ds (ms latency per ms sleep, negative); overrides mRelPerMs. */
  mMsPerMs?: number;
  /** Inner slope relative to Lref, per ms of sleep (used when mMsPerMs is absent). */
  mRelPerMs: number;
  /** Outer slope dl/dp (ms latency per MPS percent, positive); overrides mMpsRelPerPct. */
  mMpsMsPerPct?: number;
  mMpsRelPerPct: number;
  /** The outer loop acts only when |l - Lref| exceeds this percent of Lref. */
  outerDeadbandPct: number;
  /** Re-identify m online by recursive least squares. */
  identify: boolean;
  rlsForgetting: number;
  /** Smallest sleep change (ms) that counts as excitation for identification. */
  minExcitationMs: number;
}

export const PAPER_DEFAULTS: Readonly<PaperOptions> = Object.freeze({
  metric: 'mean',
  marginPct: 0,
  innerPeriodMs: 4_000,
  outerPeriodMs: 100_000,
  maxSleepMs: 1_000,
  initialSleepMs: 500,
  initialSharePct: 50,
  minSharePct: 1,
  mRelPerMs: -1.75 / 600 / 7.95,
  mMpsRelPerPct: 9.48 / 60 / 15.1,
  outerDeadbandPct: 2,
  identify: false,
  rlsForgetting: 0.95,
  minExcitationMs: 20,
});

export interface PaperState {
  sleepMs: number;
  /** Online estimate of l = m*s + n; null until the first identification step. */
  estimate: LineEstimate | null;
  /** Sleep in force during the previous inner window: identification needs the sleep to have moved. */
  lastSleepMs: number | null;
}

/** Slope bounds an online estimate must respect to be used: the right sign and within 10x of the prior. */
function usable(m: number, m0: number): boolean {
  return m < 0 && Math.abs(m) >= Math.abs(m0) / 10 && Math.abs(m) <= Math.abs(m0) * 10;
}

/** Build the paper's policy (defaults in PAPER_DEFAULTS). */
export function createPaper(options: Partial<PaperOptions> = {}): Policy<PaperState> & { readonly options: PaperOptions } {
  const o: PaperOptions = { ...PAPER_DEFAULTS, ...options };
  if (o.mMsPerMs !== undefined && !(o.mMsPerMs < 0)) throw new RangeError('gpucolo-paper: mMsPerMs must be negative');
  if (o.mMpsMsPerPct !== undefined && !(o.mMpsMsPerPct > 0)) throw new RangeError('gpucolo-paper: mMpsMsPerPct must be positive');
  const lref = (sloMs: number) => sloMs * (1 - o.marginPct / 100);
  const currentSleep = (s: PaperState, input: ControlInput) =>
    input.knobs.pacing.mode === 'per-iteration' ? input.knobs.pacing.sleepMs : s.sleepMs;

  function inner(state: PaperState, input: ControlInput): StepResult<PaperState> {
    const sleepMs = currentSleep(state, input);
    const pick = pickTightest(input.services, o.metric);
    if (!trainingActive(input) || !pick) return hold({ ...state, sleepMs, lastSleepMs: null }, input);
    const lrefMs = lref(pick.service.sloMs);
    const l = pick.measuredMs;
    const m0 = o.mMsPerMs ?? o.mRelPerMs * lrefMs;

    let estimate = state.estimate;
    if (o.identify && state.lastSleepMs !== null && Math.abs(sleepMs - state.lastSleepMs) >= o.minExcitationMs) {
      // Prior: the default slope give or take 3x, an offset anywhere near Lref, latency noise of 2% of Lref.
      estimate ??= linePrior(m0, l - m0 * sleepMs, 3 * Math.abs(m0), lrefMs, 0.02 * lrefMs);
      estimate = lineUpdate(estimate, sleepMs, l, o.rlsForgetting);
    }
    const m = estimate && usable(estimate.m, m0) ? estimate.m : m0;

    const u = (lrefMs - l) / m;
    const next = roundTo(clamp(sleepMs + u, 0, o.maxSleepMs), 1);
    const s: PaperState = { sleepMs: next, estimate, lastSleepMs: sleepMs };
    if (next === sleepMs && input.knobs.pacing.mode === 'per-iteration') return { state: s, knobs: input.knobs, decisions: [] };
    const reason = l > lrefMs ? `${o.metric} above Lref` : l < lrefMs ? `${o.metric} below Lref` : `${o.metric} at Lref`;
    const terms = { measuredMs: l, lrefMs, error: lrefMs - l, m, u, integral: next, identified: Number(m !== m0) };
    return {
      state: s,
      knobs: withSleepMs(input.knobs, next),
      decisions: [decision('inner', 'pacing', sleepMs, next, reason, terms, pick.service.serviceId)],
    };
  }

  function outer(state: PaperState, input: ControlInput): StepResult<PaperState> {
    const pick = pickTightest(input.services, o.metric);
    if (!trainingActive(input) || !pick) return hold(state, input);
    const lrefMs = lref(pick.service.sloMs);
    const l = pick.measuredMs;
    if (Math.abs(l - lrefMs) <= (o.outerDeadbandPct / 100) * lrefMs) return hold(state, input);
    const mMps = o.mMpsMsPerPct ?? o.mMpsRelPerPct * lrefMs;
    const share = input.knobs.mpsSharePct;
    const u = (lrefMs - l) / mMps;
    const next = sharePct(share + u, o.minSharePct);
    if (next === share) return hold(state, input);
    const reason = l > lrefMs ? `${o.metric} above Lref by >${o.outerDeadbandPct}%: lower MPS share` : `${o.metric} below Lref by >${o.outerDeadbandPct}%: raise MPS share`;
    const terms = { measuredMs: l, lrefMs, error: lrefMs - l, mMps, u, deadbandPct: o.outerDeadbandPct };
    // The restart changes the plant: the old line no longer holds.
    return {
      state: { ...state, estimate: null, lastSleepMs: null },
      knobs: { ...input.knobs, mpsSharePct: next },
      decisions: [decision('outer', 'mpsSharePct', share, next, reason, terms, pick.service.serviceId)],
    };
  }

  return {
    name: o.metric === 'mean' ? 'gpucolo-paper' : 'gpucolo-paper-p99',
    options: o,
    innerPeriodMs: o.innerPeriodMs,
    outerPeriodMs: o.outerPeriodMs,
    initialKnobs(): Knobs {
      return {
        mpsSharePct: sharePct(o.initialSharePct, o.minSharePct),
        pacing: { mode: 'per-iteration', sleepMs: clamp(o.initialSleepMs, 0, o.maxSleepMs) },
        trainingRunning: true,
      };
    },
    initialState(): PaperState {
      return { sleepMs: clamp(o.initialSleepMs, 0, o.maxSleepMs), estimate: null, lastSleepMs: null };
    },
    inner,
    outer,
  };
}
