/**
 * gpucolo outer tier: the training MPS share, every outerPeriodMs. Each change restarts training (~7 s), so it
 * moves only when the inner tier cannot do the job on its own:
 *   - duty >= highBound for highDwellMs      -> lower the share by lowerStepPct (inference gets more SMs);
 *   - duty <= lowBound with slack for lowDwellMs, and the outer window also shows slack
 *                                            -> raise the share by raiseStepPct (training gets more SMs).
 * Hysteresis: the two bounds are far apart, lowering is quick and raising slow, at least minMpsDwellMs passes
 * between changes, and a share that just saturated the inner tier becomes a ceiling for ceilingHoldMs, so the
 * share cannot flip between two values. Bumpless raise: the duty goes up so that (1 - duty) * share, the
 * training pressure the inner tier had settled on, is unchanged when training comes back at the larger share;
 * the inner tier then walks the duty down into the slack at its own (slow) pace.
 */
import { clamp, decision, hold, roundTo, sharePct, trainingActive } from './common.ts';
import { currentDuty } from './gpucolo-inner.ts';
import type { GpucoloOptions, GpucoloState } from './gpucolo-options.ts';
import { pickTightest } from './tightest.ts';
import type { ControlInput, Decision, Knobs, StepResult } from './types.ts';

/** One outer decision of gpucolo. `input.services` holds windows merged over the outer period. */
export function gpucoloOuter(o: GpucoloOptions, state: GpucoloState, input: ControlInput): StepResult<GpucoloState> {
  const now = input.nowMs;
  let s = state;
  if (s.ceilingUntilMs !== null && now >= s.ceilingUntilMs) s = { ...s, ceilingPct: null, ceilingUntilMs: null };
  if (!trainingActive(input)) return hold(s, input);
  if (s.lastMpsChangeMs !== null && now - s.lastMpsChangeMs < o.minMpsDwellMs) return hold(s, input);

  const share = input.knobs.mpsSharePct;
  const duty = currentDuty(s, input);
  const pick = pickTightest(input.services, o.metric);
  const targetMs = pick ? pick.service.sloMs * (1 - o.marginPct / 100) : 0;
  const base = {
    duty,
    sharePct: share,
    measuredMs: pick?.measuredMs ?? 0,
    targetMs,
    sloMs: pick?.service.sloMs ?? 0,
  };
  const decisions: Decision[] = [];
  let knobs: Knobs = input.knobs;

  const highForMs = s.highSinceMs === null ? 0 : now - s.highSinceMs;
  const lowForMs = s.lowSinceMs === null ? 0 : now - s.lowSinceMs;

  if (s.highSinceMs !== null && highForMs >= o.highDwellMs && share > o.minSharePct) {
    const next = sharePct(share - o.lowerStepPct, o.minSharePct);
    decisions.push(
      decision('outer', 'mpsSharePct', share, next, `inner saturated high for ${Math.round(highForMs / 1000)}s: lower MPS share`,
        { ...base, highBound: o.highBound, dwellMs: highForMs, stepPct: next - share }, pick?.service.serviceId),
    );
    knobs = { ...knobs, mpsSharePct: next };
    s = { ...s, ceilingPct: share, ceilingUntilMs: now + o.ceilingHoldMs };
  } else if (s.lowSinceMs !== null && lowForMs >= o.lowDwellMs && share < 100 && pick) {
    const slack = pick.measuredMs <= targetMs * (1 - o.slackPct / 100);
    const next = sharePct(share + o.raiseStepPct, o.minSharePct);
    const underCeiling = s.ceilingPct === null || next < s.ceilingPct;
    if (!slack || !underCeiling) return hold(s, input);
    decisions.push(
      decision('outer', 'mpsSharePct', share, next, `inner idle with slack for ${Math.round(lowForMs / 1000)}s: raise MPS share`,
        { ...base, lowBound: o.lowBound, slackPct: o.slackPct, dwellMs: lowForMs, stepPct: next - share }, pick.service.serviceId),
    );
    knobs = { ...knobs, mpsSharePct: next };
    if (o.bumplessRaise) {
      const handoff = roundTo(clamp(1 - ((1 - duty) * share) / next, 0, o.maxDuty), 4);
      if (handoff > duty) {
        decisions.push(
          decision('outer', 'pacing', duty, handoff, 'bumpless handoff after MPS raise',
            { ...base, newSharePct: next }, pick.service.serviceId),
        );
        knobs = { ...knobs, pacing: { mode: 'duty', duty: handoff, periodMs: o.dutyPeriodMs } };
        s = { ...s, duty: handoff };
      }
    }
  } else {
    return hold(s, input);
  }
  // The restart invalidates what the dwell timers measured.
  s = { ...s, lastMpsChangeMs: now, highSinceMs: null, lowSinceMs: null };
  return { state: s, knobs, decisions };
}
