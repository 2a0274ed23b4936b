/**
 * gpucolo inner tier: the training sleep duty, every innerPeriodMs, on the tightest service's tail metric.
 *
 * Law (velocity-form integral control on the normalised error e = (measured - target) / target):
 *   |e| <= deadband              -> hold
 *   e > deadband                 -> duty += min(maxStepUp, g * e), g = gainUpViolation above the SLO, else gainUp
 *   e < -deadband                -> duty += max(-maxStepDown, gainDown * e)
 *   then duty is clamped to [0, maxDuty].
 * The duty is the integrator, so clamping it IS the anti-windup: pinned at maxDuty it stores no excess and
 * starts coming down on the first window below target. Increase is fast and decrease slow, because a missed
 * SLO is the failure and lost training time is only a cost. Feedforward (feedforward.ts): on an arrival-rate
 * jump the duty is raised to at least (duty settled at the old rate) + ffGain * relative rise, pre-emptively;
 * measured from the settled duty, not added to feedback's own reaction, because both answer the same rise.
 *
 * Holds (no knob change): training not running (restart after an MPS change, or stopped) since latency then says
 * nothing about the duty; and windows with no finished request, which never move towards more training.
 */
import { clamp, decision, roundTo, trainingActive } from './common.ts';
import { feedforward } from './feedforward.ts';
import { ewma, marginFor } from './gpucolo-model.ts';
import type { GpucoloOptions, GpucoloState } from './gpucolo-options.ts';
import { pickTightest } from './tightest.ts';
import type { ControlInput, Decision, LatencyWindow, StepResult } from './types.ts';
import { mergeWindowsByService, metricOf } from './window.ts';

/**
 * The windows the estimator looks at: the last estimatorWindows inner periods (this one included), and the
 * services merged per serviceId over them. The SLO is scored on 1 s windows; a 200 ms window holds a few dozen
 * requests, so its p99 is nearly its max and swings far above and below the 1 s p99. Merging ~1 s of windows
 * (mergeWindows' CDF mixture) estimates the scored statistic itself.
 */
export function slidingWindows(o: GpucoloOptions, state: GpucoloState, services: readonly LatencyWindow[]) {
  const keep = Math.max(1, Math.round(o.estimatorWindows));
  const recent = [...(state.recent ?? []), [...services]].slice(-keep);
  return { recent, merged: mergeWindowsByService(recent.flat()) };
}

/** The duty in force: the knobs' if they carry a duty (an actor may have overridden it), else the state's. */
export function currentDuty(state: GpucoloState, input: ControlInput): number {
  return input.knobs.pacing.mode === 'duty' ? input.knobs.pacing.duty : state.duty;
}

/** One inner decision of gpucolo. */
export function gpucoloInner(o: GpucoloOptions, state: GpucoloState, input: ControlInput): StepResult<GpucoloState> {
  const duty = currentDuty(state, input);
  if (!trainingActive(input)) {
    // Nothing to learn about the duty while training is off; dwell timers restart when it is back. These
    // windows are inference alone, L0 of the model (gpucolo-model.ts): the lowest 1 s estimate of this run
    // (queues built under training drain first) is the reading. The estimator starts afresh after the run.
    const run = state.aloneRun ?? null;
    const keep = Math.max(1, Math.round(o.estimatorWindows));
    const recent = run === null ? [[...input.services]] : [...(state.recent ?? []), [...input.services]].slice(-keep);
    const nextRun: Record<string, number> = { ...(run ?? {}) };
    const aloneMs = { ...(state.aloneMs ?? {}) };
    if (recent.length >= Math.min(3, keep)) {
      for (const w of mergeWindowsByService(recent.flat())) {
        if (w.count === 0) continue;
        nextRun[w.serviceId] = Math.min(nextRun[w.serviceId] ?? Infinity, metricOf(w, o.metric));
        aloneMs[w.serviceId] = nextRun[w.serviceId]!;
      }
    }
    return { state: { ...state, duty, highSinceMs: null, lowSinceMs: null, recent, aloneRun: nextRun, aloneMs }, knobs: input.knobs, decisions: [] };
  }
  if (state.aloneRun != null) state = { ...state, aloneRun: null, recent: [] };

  const ff = o.feedforward
    ? feedforward(state.rateTrackers, input.services, {
        thresholdPct: o.ffThresholdPct,
        cusumH: o.ffCusumH,
        gain: o.ffGain,
        maxStep: o.ffMaxStep,
        refAlpha: o.ffRefAlpha,
      })
    : undefined;

  const { recent, merged } = slidingWindows(o, state, input.services);
  const pick = pickTightest(merged, o.metric);
  // Fast path: one inner window already past its SLO is evidence the 1 s window is lost; it is read against the
  // SLO (not the target). A 200 ms window's p99 is nearly its max, so for p99 over estimatorWindows windows the
  // window is read at p95: when 5% of one fifth of the second is over the SLO, 1% of the second already is.
  const fastMetric = o.metric === 'p99' && o.estimatorWindows >= 5 ? 'p95' : o.metric;
  const now = pickTightest(input.services, fastMetric);
  const fastError = now && o.fastViolation && now.measuredMs > now.service.sloMs
    ? (now.measuredMs - now.service.sloMs) / now.service.sloMs
    : 0;
  let fb = 0;
  let gain = 0;
  let error = 0;
  let targetMs = 0;
  let rule = 'empty window: hold';
  let noise = state.noise ?? null;
  if (pick && now && pick.measuredMs > 0 && now.service.count > 0) {
    noise = ewma(noise, Math.abs(now.measuredMs - pick.measuredMs) / pick.measuredMs, o.modelAlpha);
  }
  const marginPct = o.adaptiveMargin ? marginFor(noise, o.noiseGain, o.marginMinPct, o.marginMaxPct, o.marginPct) : o.marginPct;
  if (pick) {
    targetMs = pick.service.sloMs * (1 - marginPct / 100);
    error = (pick.measuredMs - targetMs) / targetMs;
    const db = o.deadbandPct / 100;
    const fast = fastError > 0 && fastError >= error;
    if (fast) error = fastError;
    if (error > db) {
      const violated = fast || pick.measuredMs > pick.service.sloMs;
      gain = violated ? o.gainUpViolation : o.gainUp;
      fb = Math.min(o.maxStepUp, gain * error);
      rule = fast ? `window ${o.metric} above SLO` : violated ? `${o.metric} above SLO` : `${o.metric} above target`;
    } else if (error < -db) {
      gain = o.gainDown;
      fb = Math.max(-o.maxStepDown, gain * error);
      rule = `${o.metric} below target`;
    } else {
      rule = 'within deadband';
    }
  }

  const ffStep = ff?.step ?? 0;
  const settledDuty = state.dutyAtRefRate ?? duty;
  const ffTarget = settledDuty + ffStep;
  const useFf = ffStep > 0 && ffTarget > duty + fb;
  const step = useFf ? ffTarget - duty : fb;
  const newDuty = roundTo(clamp(duty + step, 0, o.maxDuty), 4);
  if (useFf) rule = `feedforward: rate +${Math.round(ff!.risePct)}%`;
  if (newDuty === o.maxDuty && step > 0 && duty + step > o.maxDuty) rule += ' (clamped at max duty)';
  if (step === 0 && newDuty !== duty) rule = 'duty outside [0, maxDuty]: clamp';

  const decisions: Decision[] = [];
  const modeSwitch = input.knobs.pacing.mode !== 'duty';
  if (modeSwitch && newDuty === duty) rule = 'switch to duty pacing';
  if (newDuty !== duty || modeSwitch) {
    const terms: Record<string, number> = {
      measuredMs: pick?.measuredMs ?? 0,
      targetMs,
      sloMs: pick?.service.sloMs ?? 0,
      error,
      gain,
      feedback: fb,
      feedforward: ffStep,
      settledDuty,
      integral: newDuty,
      marginPct,
      count: pick?.service.count ?? 0,
    };
    if (ff && ffStep > 0) Object.assign(terms, { rateRps: ff.rateRps, refRateRps: ff.refRps, risePct: ff.risePct });
    const driver = useFf ? ff!.serviceId : pick?.service.serviceId;
    decisions.push(decision('inner', 'pacing', duty, newDuty, rule, terms, driver));
  }

  // Dwell timers for the outer tier. A low run starts on a window with clear slack and survives windows up to
  // the target (a noisy tail crosses the slack line now and then; the outer tier re-checks slack on its merged
  // window). Empty windows neither start nor break it: no samples is no evidence of slack.
  const highSinceMs = newDuty >= o.highBound ? (state.highSinceMs ?? input.nowMs) : null;
  let lowSinceMs = state.lowSinceMs;
  if (newDuty > o.lowBound) lowSinceMs = null;
  else if (pick) {
    if (pick.measuredMs > targetMs) lowSinceMs = null;
    else if (lowSinceMs === null && pick.measuredMs <= targetMs * (1 - o.slackPct / 100)) lowSinceMs = input.nowMs;
  }

  const knobs = newDuty === duty && !modeSwitch
    ? input.knobs
    : { ...input.knobs, pacing: { mode: 'duty' as const, duty: newDuty, periodMs: o.dutyPeriodMs } };
  // The settled base moves only while no rate is elevated, so a rise seen one window before it fires still
  // counts from the duty of before the rise.
  const calm = !ff || (ffStep === 0 && ff.calm);
  const dutyAtRefRate = calm ? duty : ffStep > 0 ? newDuty : (state.dutyAtRefRate ?? duty);
  return {
    state: { ...state, duty: newDuty, recent, rateTrackers: ff?.trackers ?? state.rateTrackers, dutyAtRefRate, highSinceMs, lowSinceMs, noise, marginPct, peakMs: pick ? Math.max(state.peakMs ?? 0, pick.measuredMs) : (state.peakMs ?? null) },
    knobs,
    decisions,
  };
}
