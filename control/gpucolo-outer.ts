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
import { dutyForPressure, pressure, shareForPressure, trainingRate } from './gpucolo-model.ts';
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

  if (o.outerMode === 'model') return modelOuter(o, s, input);

  const share = input.knobs.mpsSharePct;
  const duty = currentDuty(s, input);
  const pick = pickTightest(input.services, o.metric);
  const targetMs = pick ? pick.service.sloMs * (1 - (s.marginPct ?? o.marginPct) / 100) : 0;
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

/**
 * Model mode (gpucolo-model.ts): identify k from where the inner tier holds the latency now, L = L0 + k * x,
 * and move the share to where the inner tier would need no sleep, x* = modelSafety * (target - L0) / k, when
 * the predicted training gain is at least minGainPct. The duty is handed over bumplessly (the same pressure
 * at the new share), so the restart does not hit the SLO; the inner tier then walks it down into the room.
 * Lowering never waits for a ceiling; raising stays below a share that recently saturated the inner tier.
 */
function modelOuter(o: GpucoloOptions, state: GpucoloState, input: ControlInput): StepResult<GpucoloState> {
  const now = input.nowMs;
  const peak = state.peakMs ?? null;
  let s: GpucoloState = { ...state, peakMs: null };
  const pick = pickTightest(input.services, o.metric);
  if (!pick || peak === null) return hold(s, input);
  const share = input.knobs.mpsSharePct;
  const duty = currentDuty(s, input);
  const marginPct = s.marginPct ?? o.marginPct;
  const targetMs = pick.service.sloMs * (1 - marginPct / 100);
  // What the inner tier steers: the 1 s estimate. While it sleeps training (duty > 0, not pinned), it holds that
  // estimate at the target, so the target is the latency at this pressure; with no sleep, the highest estimate of
  // the period is (cautiously) the latency at this pressure.
  const measured = duty > 0.02 && duty < o.maxDuty ? Math.max(targetMs, Math.min(peak, pick.service.sloMs)) : peak;
  // Only from a settled inner tier: no rate rise being absorbed, latency within the SLO.
  if (peak > pick.service.sloMs) return hold(s, input);
  if (s.dutyAtRefRate !== null && s.dutyAtRefRate < duty - 0.05) return hold(s, input);
  const x = pressure(duty, share, o.gamma);
  if (x <= 0) return hold(s, input);
  const l0Raw = s.aloneMs?.[pick.service.serviceId];
  // Without a reading of inference alone, attribute all latency to training: the cautious reading.
  const l0 = Math.min(l0Raw ?? 0, measured * 0.95);
  const k = (measured - l0) / x;
  if (!(k > 0) || targetMs <= l0) return hold(s, input);
  // Latency is convex in pressure (queues), so a line through a low-pressure point overestimates the room:
  // one move at most multiplies the pressure by maxPressureRaise.
  const xStar = Math.min((o.modelSafety * (targetMs - l0)) / k, o.maxPressureRaise * x);
  let next = sharePct(shareForPressure(xStar, o.gamma), o.minSharePct);
  const raising = next > share;
  if (raising && s.ceilingPct !== null && next >= s.ceilingPct) next = sharePct(s.ceilingPct - 1, o.minSharePct);
  if (next === share) return hold(s, input);
  const nextDuty = roundTo(clamp(dutyForPressure(x, next, o.gamma), 0, o.maxDuty), 4);
  const dutyAtTarget = clamp(dutyForPressure(xStar, next, o.gamma), 0, o.maxDuty);
  const gainPct = (trainingRate(dutyAtTarget, next, o.beta) / trainingRate(duty, share, o.beta) - 1) * 100;
  if (!(gainPct >= o.minGainPct)) return hold(s, input);
  const terms = {
    measuredMs: measured, peakMs: peak, targetMs, sloMs: pick.service.sloMs, marginPct, duty, sharePct: share, pressure: x,
    aloneMs: l0, aloneMeasured: l0Raw === undefined ? 0 : 1, slopeK: k, pressureTarget: xStar, predictedGainPct: gainPct,
  };
  const decisions: Decision[] = [
    decision('outer', 'mpsSharePct', share, next, raising ? 'model: room for more training SMs, raise MPS share' : 'model: less sleep at a lower MPS share trains more',
      terms, pick.service.serviceId),
  ];
  let knobs: Knobs = { ...input.knobs, mpsSharePct: next };
  if (nextDuty !== duty) {
    decisions.push(decision('outer', 'pacing', duty, nextDuty, 'bumpless handoff: same pressure at the new share', { ...terms, newSharePct: next }, pick.service.serviceId));
    knobs = { ...knobs, pacing: { mode: 'duty', duty: nextDuty, periodMs: o.dutyPeriodMs } };
  }
  s = {
    ...s, duty: nextDuty, dutyAtRefRate: null, lastMpsChangeMs: now, highSinceMs: null, lowSinceMs: null,
    // A share left downwards is a ceiling for a while: raises stay below it, so the share cannot flip-flop.
    ...(!raising ? { ceilingPct: share, ceilingUntilMs: now + o.ceilingHoldMs } : {}),
  };
  return { state: s, knobs, decisions };
}
