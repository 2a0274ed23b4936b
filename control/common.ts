/** Small helpers shared by the policies: clamping, knob edits, decisions. Pure. */
import type { ControlInput, Decision, Knobs, Pacing, StepResult } from './types.ts';

/** x limited to [lo, hi]. */
export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** The last `keep` of `prev` followed by `item`, in a new array (`prev` unchanged). */
export function lastOf<T>(prev: readonly T[], item: T, keep: number): T[] {
  const out = prev.slice(Math.max(0, prev.length + 1 - keep));
  out.push(item);
  return out;
}

/** x rounded to `digits` decimals, so tiny float drift never becomes a knob change. */
export function roundTo(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** An MPS share the daemon accepts: an integer in [max(1, minPct), 100]. */
export function sharePct(x: number, minPct = 1): number {
  return clamp(Math.round(x), Math.max(1, Math.ceil(minPct)), 100);
}

/**
 * Whether training is actually running, so that latency reflects the knobs. Without training observations we
 * trust the knobs; with them, at least one job must be running (not restarting after an MPS change, not stopped).
 */
export function trainingActive(input: ControlInput): boolean {
  if (!input.knobs.trainingRunning) return false;
  return input.trainings.length === 0 || input.trainings.some((t) => t.running);
}

/** The pacing knob as one number: duty (0..1) or sleep ms per iteration. */
export function pacingValue(p: Pacing): number {
  return p.mode === 'duty' ? p.duty : p.sleepMs;
}

/** Whether two pacing settings are the same: same mode, same value, and (both duty) same period. */
export function samePacing(a: Pacing, b: Pacing): boolean {
  return a.mode === b.mode && pacingValue(a) === pacingValue(b) && (a.mode !== 'duty' || b.mode !== 'duty' || a.periodMs === b.periodMs);
}

/** Knobs with per-iteration sleep set. */
export function withSleepMs(k: Knobs, sleepMs: number): Knobs {
  return { ...k, pacing: { mode: 'per-iteration', sleepMs } };
}

/** A step that changes nothing. */
export function hold<S>(state: S, input: ControlInput): StepResult<S> {
  return { state, knobs: input.knobs, decisions: [] };
}

/** Build a Decision, leaving out drivingServiceId when unknown. */
export function decision(
  tier: Decision['tier'],
  knob: Decision['knob'],
  oldValue: number,
  newValue: number,
  reason: string,
  terms: Record<string, number>,
  drivingServiceId?: string,
): Decision {
  const d: Decision = { tier, knob, oldValue, newValue, reason, terms };
  if (drivingServiceId !== undefined) d.drivingServiceId = drivingServiceId;
  return d;
}

/** Decisions that bring `from` back to the fixed `to` (one per differing knob), for policies that never adapt. */
export function reassert(tier: Decision['tier'], from: Knobs, to: Knobs): Decision[] {
  const out: Decision[] = [];
  if (from.trainingRunning !== to.trainingRunning) {
    out.push(decision(tier, 'trainingRunning', Number(from.trainingRunning), Number(to.trainingRunning), 'restore fixed setting', {}));
  }
  if (from.mpsSharePct !== to.mpsSharePct) {
    out.push(decision(tier, 'mpsSharePct', from.mpsSharePct, to.mpsSharePct, 'restore fixed setting', {}));
  }
  if (!samePacing(from.pacing, to.pacing)) out.push(decision(tier, 'pacing', pacingValue(from.pacing), pacingValue(to.pacing), 'restore fixed setting', {}));
  return out;
}
