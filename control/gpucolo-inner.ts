/**
 * gpucolo inner tier: the training sleep duty, every innerPeriodMs (200 ms), from the services' tails.
 *
 * The duty trades awake time against the chance of a 1 s window past the SLO, at a price (gpucolo-model.ts
 * pickDuty): maximise (1 - duty) - price * P(miss | duty) over the next second. P(miss) is the calibrated model's
 * tail, kappa * model(p99), read as log-normal with the measured noise sigma, at the load the rate tracker sees,
 * mixed with its average over the forecast's loads (those inference alone barely serves included), each weighted
 * as the next second's given the load now (gpucolo-service.ts nextWeights; once a second), as far as the last second
 * fails to predict the next (1 - rho^2, rho the lag-one correlation of the log 1 s rates: independent bursts keep a
 * duty that covers them, a slowly moving load is followed, not a peak hours away), never below the chance at the
 * load seen now (gpucolo-model.ts missOf). Where sleep barely moves the tail (a small interference, or a load inference alone
 * barely serves) no sleep is bought; where it moves it steeply, sleep is bought up to the price.
 *
 * The price is a dual variable that holds the attainment floor: every 1 s window multiplies it by
 * exp(PRICE_RATE * (training's part of a miss - allowed)), training's part the share of the miss's chance that
 * training adds to inference alone's (by the model, at that second's load and duty), allowed a part
 * (floorSharePct) of the floor's slack, min(0.99, alone - 0.005). Misses training caused raise the price and so
 * the duty; a clean record lowers it and gives training back. The last misses charged are kept and charged again
 * every second with what is known of inference alone now (its model, and the excess of misses seen at each miss's
 * load, gpucolo-service.ts aloneExcessAt): the price gives back what alone's own noise put on it, and takes what a
 * prior that read alone too noisy left off. Where training's misses come more often than the model gives them
 * (over the last ten minutes next to awake training: gpucolo-service.ts oursExcess), the duty is picked at the
 * price times that excess: the price alone takes more misses to learn a tenfold error than a short run can spare.
 *
 * What the model needs is identified here from the windows:
 *   - s0 (alone batch time): from the mean latency while training restarts, or sleeps at the cap (the run starts
 *     there, initialDuty);
 *   - I (interference of the share in force): from the mean latency of each window with training awake
 *     (gpucolo-model.ts meanSlowdown), weighted by (1 - duty)^2 and only up to a duty of 0.6 (a window mostly
 *     asleep says little about I), averaged as xi = I / (1 + I); while the tail holds the duty above that for
 *     long, a rough reading from the tail itself;
 *   - kappa (measured / model): from every 1 s estimate, slowly (noise averages out) unless the estimate reads
 *     more than three noise deviations above the model (a real change: taken at once), never from a second near
 *     saturation or holding a backlog (the model describes neither);
 *   - sigma: the spread of the log 1 s tail around a slow (20 s) calibration, and alone's own bias and spread
 *     (from seconds with training out of the way) for the chances inference alone would have missed;
 *   - whether the client waits for its replies (closed loop: no queue), read while training is out of the way
 *     (awake training's stretched batches would make a closed loop look queued);
 *   - the load the duty is picked for: the arrival-rate level of feedforward.ts's Poisson CUSUM (a rise is
 *     taken at once, a fall over about 2 s), not one 200 ms window's count, whose Poisson noise would swing the
 *     duty on a flat load; what the server carries (arrivals, or completions while a queue drains) is what the
 *     readings of s0, I and kappa are taken against.
 * The 1 s tail is read as the SLO is scored: nearest rank, so with 100 requests or fewer the slowest one.
 * For ALERT_MS after the rate tracker declares a rise, a miss is priced up to ALERT_FACTOR times (in full for a
 * load whose seconds predict each other): right after a change the model is least right, and a miss then leaves
 * the load unsettled.
 * A fall of the duty is limited to maxStepDown per period, and a tail far above the model (a backlog) holds it.
 * Safety first: a 200 ms window already past the SLO, a second in which requests arrived but none finished, or an
 * arrival rate that at least doubled sends the duty to the cap at once; a window past the SLO is excused (no cap)
 * only away from saturation, when windows with training out of the way miss about as often as awake ones (the
 * misses are inference's own: a host's stalls, not training's interference; gpucolo-service.ts missExcused).
 *
 * At a load inference alone barely serves (by the model it misses more often than not, at CALIBRATION_MAX_LOAD or
 * more of what it serves) the duty is held at the cap until an outer period passes without one, and those periods
 * are kept out of what the outer tier reads as the share's (gpucolo-outer.ts): awake time is not free there.
 *
 * Holds (no knob change) while training is not running (restart after an MPS change, or stopped): those windows
 * are inference alone, s0's reading. Windows with no finished request never move towards more training.
 */
import { clamp, decision, lastOf, roundTo, trainingActive } from './common.ts';
import { feedforward, type FeedforwardOptions } from './feedforward.ts';
import {
  atDuty, atRate, dutyGrid, ewma, interferenceFromStretch, interferenceFromTail, looksClosed, meanSlowdown, missChance, missOf, missRow, normalQuantile, pickDuty,
  rateBin, scratchRow, serviceFromMean, surpriseOf, tailMs, utilisation, xiOf,
} from './gpucolo-model.ts';
import type { GpucoloOptions, GpucoloState, ServiceModel } from './gpucolo-options.ts';
import {
  aloneChance, allowedExtra, countFast, currentDuty, decayedRates, emptyModel, missExcused, REFLEX_AWAKE_DUTY, countAloneSecond, fastMetric, forecastMix, interferenceNow, modelReady, noiseOf, overloaded,
  oursExcess, countOursSecond, quantileBin, readAlone, readS0, rechargeMisses, recordCharge, saturatedWithin, secondTail, serverLoad, trainingShare,
} from './gpucolo-service.ts';
import type { ControlInput, Decision, LatencyWindow, StepResult } from './types.ts';
import { LATENCY_METRICS, mergeWindowsByService, metricOf } from './window.ts';

/** The rate tracker's detector: a 20% rise, CUSUM threshold 4, reference EWMA 0.1 per window (see feedforward.ts). */
const RATE_TRACKING: FeedforwardOptions = { thresholdPct: 20, cusumH: 4, gain: 1, maxStep: Infinity, refAlpha: 0.1 };
/** Memory of the interference readings, in units of reading weight (a window at zero duty weighs at most 1). */
const I_MEMORY = 100;
/** Largest duty at which a window's mean is read for I (above it, queues built in awake phases dominate the mean). */
const I_READ_MAX_DUTY = 0.6;
/** Weight of one reading of I from the tail while identifying (the mean's reading at zero duty weighs 1), and the
 * inner periods of identification before such readings are taken. */
const TAIL_READING_WEIGHT = 0.1;
const TAIL_READING_AFTER = 50;
/** EWMA weight per inner period of the slow calibration and the noise read against it (about 20 s at 200 ms). */
const NOISE_ALPHA = 0.01;
/** Bounds of the price of a missed window (its start: gpucolo-service.ts INITIAL_PRICE), and its step per scored window. */
const PRICE_MIN = 2;
const PRICE_MAX = 1e4;
const PRICE_RATE = 0.5;

/** EWMA weight per second of the load's log-rate statistics (about 5 minutes). */
const RATE_STATS_ALPHA = 1 / 300;
/** Utilisation (model) above which a second does not calibrate kappa. */
const CALIBRATION_MAX_LOAD = 0.85;
/** A declared rise of at least this much (percent; a doubling is 100) sends the duty to the cap at once. */
const JUMP_PCT = 60;
/** After a declared load rise: how long, and how much more a miss counts. */
const ALERT_MS = 12_000;
const ALERT_FACTOR = 4;
/** A window whose tail is this many times the model's expectation is read as a backlog, not as the plant. */
const BACKLOG_FACTOR = 2;
/** Utilisation (model, training's slowdown at the duty in force) at or above which a fast miss is never excused. */
const REFLEX_MAX_LOAD = 0.7;

/** The fast path's reason at each metric, built once (not a template string per window past the SLO). */
const WINDOW_OVER_REASON: Record<string, string> = {};
for (const m of LATENCY_METRICS) WINDOW_OVER_REASON[m] = `window ${m} above SLO: duty to cap`;
/** The row of miss chances at the load seen now: read within one service's step and dropped (scratchRow). */
let nowRow: Float64Array = new Float64Array(32);

interface Want {
  duty: number;
  reason: string;
  terms: Record<string, number>;
  serviceId: string;
  ratio: number;
}

/**
 * One inner decision of gpucolo.
 * Long on purpose (about 250 lines): each service's step reads the same second (its load, duty, tail, noise,
 * kappa, closed loop) into the model and then decides on it, in an order the readings depend on (alone before
 * interference before calibration before the books before the duty); split into functions, each would take and
 * return most of that state. The pure parts it uses are in gpucolo-service.ts and gpucolo-model.ts.
 */
export function gpucoloInner(o: GpucoloOptions, state: GpucoloState, input: ControlInput): StepResult<GpucoloState> {
  const now = input.nowMs;
  const active = trainingActive(input);
  // Stopped by the knobs, yet a job runs: one that cannot checkpoint is held at the duty cap (gpu/nvidia/training-job.ts).
  const heldRunning = !input.knobs.trainingRunning && input.trainings.some((t) => t.running);
  const duty = currentDuty(state, input);
  // The state is read from `s` and written once, into the one copy made at the end (`out`): a copy of the
  // 19-field state per change, as this was written before, boxed its numbers anew each time, on every window.
  const s = state;
  const startMs = s.startMs ?? now - o.innerPeriodMs;
  let restartMs = s.restartMs;
  let restartSinceMs = s.restartSinceMs;
  if (active && restartSinceMs !== null) { restartMs = ewma(restartMs, now - restartSinceMs, 0.5); restartSinceMs = null; }

  // The 1 s estimator: the last estimatorWindows windows, restarted whenever training starts or stops, so it
  // never mixes inference alone with inference next to training.
  const keep = Math.max(1, Math.round(o.estimatorWindows));
  const fresh = s.recentActive !== active;
  const recent = lastOf(fresh ? [] : s.recent, input.services.slice(), keep);
  const recentDuty = lastOf(fresh ? [] : s.recentDuty, duty, keep);
  const steps = fresh ? 1 : s.steps + 1;
  const dutyEff = recentDuty.reduce((a, b) => a + b, 0) / recentDuty.length;
  const windows: LatencyWindow[] = [];
  for (const r of recent) for (const w of r) windows.push(w);
  const merged = mergeWindowsByService(windows);
  const ff = feedforward(s.rateTrackers, input.services, RATE_TRACKING);
  // A rise the rate tracker declares opens an alert of ALERT_MS.
  const alertUntilMs = ff.step > 0 ? now + ALERT_MS : s.alertUntilMs;
  const decay = Math.exp(-(o.innerPeriodMs / 1000) / o.horizonS);
  const models: Record<string, ServiceModel> = { ...s.models };
  const settled = recent.length >= Math.min(3, keep);
  let want: Want | null = null;
  // Whether some service's load is one inference alone barely serves (saturated, below), and whether the duty is
  // held at the cap for it (held: saturated, or within an outer period of it): the duty is at the cap then,
  // whatever path set it, and the period says nothing about what the share leaves training.
  let saturated = false;
  let held = false;

  for (const m of merged) {
    const id = m.serviceId;
    const w = input.services.find((x) => x.serviceId === id);
    const sm: ServiceModel = { ...(models[id] ?? emptyModel()) };
    // The load forecast (outer tier): the 1 s rates, decaying over the horizon.
    sm.rates = decayedRates(sm.rates, decay, m.rateRps > 0 ? rateBin(m.rateRps) : null, o.innerPeriodMs / 1000);
    // The forecast's peak (99th percentile bin): the outer tier waits for it to hold before it plans a share.
    const peak = quantileBin(sm.rates, 0.99);
    if (peak > sm.peakBin) { sm.peakBin = peak; sm.peakSinceMs = now; }
    // Whether the client waits for its replies is the client's, not the plant's: it is read while training is out
    // of the way (restarting, or sleeping at the cap), where a closed loop's latencies are the batches' own spread;
    // awake training stretches some batches far more than others and would make a closed loop look queued.
    if (m.count >= 3 && (!active || dutyEff >= o.maxDuty - 1e-9)) sm.closed = ewma(sm.closed, looksClosed(m.rateRps, m.meanMs, m.p50Ms, m.p99Ms) ? 1 : 0, 0.1);
    const closed = (sm.closed ?? 0) > 0.5;
    // The load the server carries: what arrives, or what it completes while a queue drains (after a burst the
    // arrivals fall at once, the work does not).
    const loadRps = serverLoad(m);
    // The fast-window counts: does this window's miss, if any, come with training awake more than without it?
    // Counted away from saturation only (as the excuse is read): near it a miss is a queue, at any duty.
    if (w && w.count > 0 && settled && sm.s0Ms !== null && utilisation(serverLoad(w), sm.s0Ms, interferenceNow(sm) ?? 0, duty, closed) < REFLEX_MAX_LOAD) {
      const regime = !active || dutyEff >= o.maxDuty - 1e-9 ? 'cap' : dutyEff <= REFLEX_AWAKE_DUTY ? 'awake' : null;
      countFast(sm, regime, metricOf(w, fastMetric(o)) > w.sloMs);
    }

    if (!active) {
      // Inference alone: s0's reading (after the first windows, while queues built under training drain), and
      // how the calibrated model reads it; not while a job asked to stop still runs (heldRunning).
      if (m.count > 0 && settled && !heldRunning) {
        const alone = serviceFromMean(m.meanMs, loadRps, closed);
        if (alone > 0) readS0(sm, alone, 0.3);
        const aloneMs = tailMs({ s0Ms: sm.s0Ms!, interference: 0, duty: 0, periodMs: o.dutyPeriodMs, rateRps: loadRps, closed });
        if (m.count >= 5 && aloneMs > 0 && Number.isFinite(aloneMs) && (loadRps * sm.s0Ms!) / 1000 < CALIBRATION_MAX_LOAD) {
          readAlone(sm, Math.log(secondTail(m, o.metric)) - Math.log(aloneMs));
          countAloneSecond(sm, secondTail(m, o.metric) > m.sloMs, aloneMs, m.sloMs, 1 / keep, rateBin(loadRps));
        }
      }
      models[id] = sm;
      continue;
    }
    // At the duty cap training is all but asleep: another reading of s0 (the first one, before any restart),
    // corrected for the little awake time left.
    if (dutyEff >= o.maxDuty - 1e-9 && m.count >= 5 && settled) {
      const reading = serviceFromMean(m.meanMs, loadRps, closed) / meanSlowdown(interferenceNow(sm) ?? 0, o.maxDuty, sm.s0Ms ?? 0, o.dutyPeriodMs);
      if (reading > 0) readS0(sm, reading, 0.1);
    }

    // Interference of the share in force, from this window's mean (not near saturation, where means say little).
    if (sm.s0Ms !== null && settled && w && w.count >= 3 && duty <= I_READ_MAX_DUTY) {
      // A closed loop keeps the server busy by construction and its mean is the service time: no saturation
      // to avoid there (as in the calibration below); an open queue near saturation says little in its mean.
      const wLoad = serverLoad(w);
      const u = utilisation(wLoad, sm.s0Ms, interferenceNow(sm) ?? 0, duty, closed);
      if (u < 0.85 && metricOf(w, o.metric) < 4 * w.sloMs) {
        const stretch = serviceFromMean(w.meanMs, wLoad, closed) / sm.s0Ms;
        // Averaged as xi = I / (1 + I), bounded: a mostly asleep window can read an absurd I, never an absurd xi.
        const reading = xiOf(interferenceFromStretch(stretch, duty, sm.s0Ms, o.dutyPeriodMs));
        const weight = (1 - duty) ** 2 * Math.min(1, w.count / 10);
        // Forgetting per unit of new evidence, not per unit of time: hours at the duty cap keep what was read.
        const keepOld = Math.exp(-weight / I_MEMORY);
        sm.iSum = sm.iSum * keepOld + weight * reading;
        sm.iWeight = sm.iWeight * keepOld + weight;
      }
    }
    const iNow = interferenceNow(sm);
    const measured = m.count > 0 ? secondTail(m, o.metric) : null;
    const sigma = noiseOf(sm);

    // Calibration: kappa = measured / model at the operating point (the duties of the estimator's windows).
    let backlog = false;
    // Not near saturation: a second of a load close to capacity holds a queue still building, far from the
    // steady state the model describes, and would drag kappa down for every other load.
    if (sm.s0Ms !== null && iNow !== null && measured !== null && measured > 0 && m.count >= 5) {
      const model = tailMs({ s0Ms: sm.s0Ms, interference: iNow, duty: dutyEff, periodMs: o.dutyPeriodMs, rateRps: loadRps, closed });
      const u = utilisation(loadRps, sm.s0Ms, iNow, dutyEff, closed);
      const resid = Math.log(measured) - Math.log(model);
      // Nor a backlog left by a burst: a tail many times the calibrated model is a queue draining, not the plant.
      backlog = resid - sm.lnKappa > Math.log(BACKLOG_FACTOR) + 3 * sigma;
      if (Number.isFinite(model) && model > 0 && u < CALIBRATION_MAX_LOAD && !backlog) {
        const r = resid - sm.lnKappa;
        const gain = r > 3 * sigma ? o.calibrationGainFast : o.calibrationGainSlow;
        sm.lnKappa = clamp(sm.lnKappa + gain * r, Math.log(0.05), Math.log(20));
        sm.kappaN++;
        // The noise is read against a slow calibration (about 20 s), which does not follow it.
        // Running means at first (weight 1/n), then EWMAs: the first readings count fully.
        const alpha = Math.max(NOISE_ALPHA, 1 / sm.kappaN);
        const rLong = resid - (sm.lnKappaSlow ?? resid);
        sm.lnKappaSlow = ewma(sm.lnKappaSlow, resid, alpha);
        if (sm.kappaN > 5) sm.noiseVar = ewma(sm.noiseVar, rLong * rLong, Math.max(NOISE_ALPHA, 1 / (sm.kappaN - 5)));
      }
    }
    const rateRps = ff.trackers[id]?.refRps ?? loadRps;
    const kappa = Math.exp(sm.lnKappa);
    // Alone's level: the model with no training, read against alone's own seconds (aloneBias), not through kappa,
    // which is calibrated on seconds next to training and moves with them.
    const aloneMs = sm.s0Ms === null ? 0 : tailMs({ s0Ms: sm.s0Ms, interference: 0, duty: 0, periodMs: o.dutyPeriodMs, rateRps: loadRps, closed });
    // How the calibrated model reads inference alone: its bias and spread, from seconds with training out of the
    // way (restarts, the duty cap), so that alone's misses are not read through the noise training adds.
    if (sm.s0Ms !== null && (!active || dutyEff >= o.maxDuty - 1e-9) && settled && measured !== null && measured > 0 && m.count >= 5
      && !overloaded(loadRps, sm.s0Ms, closed) && (loadRps * sm.s0Ms) / 1000 < CALIBRATION_MAX_LOAD && aloneMs > 0) {
      readAlone(sm, Math.log(measured) - Math.log(aloneMs));
      countAloneSecond(sm, measured > m.sloMs, aloneMs, m.sloMs, 1 / keep, rateBin(loadRps));
    }

    // Every whole second of windows (aligned with the estimator): how well one second's load predicts the next.
    if (steps % keep === 0 && m.rateRps > 0) {
      const x = Math.log(m.rateRps);
      if (sm.lastLnRate !== null && sm.lnRateMean !== null) {
        const dx = x - sm.lnRateMean, dl = sm.lastLnRate - sm.lnRateMean;
        sm.lnRateVar = ewma(sm.lnRateVar, dx * dx, RATE_STATS_ALPHA);
        sm.lnRateCov = ewma(sm.lnRateCov, dx * dl, RATE_STATS_ALPHA);
      }
      sm.lnRateMean = ewma(sm.lnRateMean, x, RATE_STATS_ALPHA);
      sm.lastLnRate = x;
    }
    // Inference alone at saturation: by the model it misses a second more often than not, at a load of at least
    // CALIBRATION_MAX_LOAD of what it serves (the calibration's own bound on the loads the model describes). Every
    // duty then reads as about as likely to miss as alone, so awake time looks free; but the queue awake time adds
    // is carried into the seconds after it. The duty goes to the cap (below) until an outer period has passed
    // without such a period (near that bound a load crosses it from second to second). The last one is marked
    // (saturatedMs): the outer tier keeps the held periods out of the share's evidence and makes no move for gain on
    // them (gpucolo-outer.ts): at a sustained saturation stopping training (stopAtCap) is the path.
    const aloneNow = sm.s0Ms === null ? 0 : aloneChance(sm, aloneMs, m.sloMs);
    const atSaturation = modelReady(sm) && aloneNow >= 0.5 && (loadRps * sm.s0Ms!) / 1000 >= CALIBRATION_MAX_LOAD;
    if (atSaturation) saturated = true;
    const holdCap = modelReady(sm) && (atSaturation || saturatedWithin(s, now, o.outerPeriodMs));
    if (holdCap) held = true;
    // The floor's books: every whole second of windows (aligned with the estimator) is one scored window. A miss
    // counts as training's by the share of its chance training adds to alone's (the model's chances at the load and
    // duty of that second, the same kappa): a miss alone would have had anyway costs nothing, one training made
    // likely in full. One held at the cap for a saturation (above) costs the price nothing and is not charged again
    // (the duty can go no higher); the share can move, and the outer tier's books (oursMiss) count it.
    if (steps % keep === 0 && (m.count > 0 || m.rateRps > 0) && sm.s0Ms !== null && iNow !== null) {
      const missed = m.count === 0 || secondTail(m, o.metric) > m.sloMs ? 1 : 0;
      const bin = rateBin(loadRps);
      const oursChance = missChance(kappa * tailMs({ s0Ms: sm.s0Ms, interference: iNow, duty: dutyEff, periodMs: o.dutyPeriodMs, rateRps: loadRps, closed }), m.sloMs, sigma);
      const part = trainingShare(aloneNow, oursChance), share = holdCap ? 0 : part;
      sm.aloneMiss = ewma(sm.aloneMiss, aloneNow, RATE_STATS_ALPHA);
      sm.oursMiss = ewma(sm.oursMiss, missed * part, RATE_STATS_ALPHA);
      // The last misses charged are charged again with what is known of alone now (gpucolo-service.ts
      // rechargeMisses): the price keeps neither what alone's noise put on it nor what a wrong prior left off.
      const recharged = rechargeMisses(sm);
      sm.price = clamp(sm.price * Math.exp(PRICE_RATE * (missed * share - allowedExtra(o, sm.aloneMiss ?? 0) + recharged)), PRICE_MIN, PRICE_MAX);
      if (missed && !holdCap) recordCharge(sm, { aloneMs, sloMs: m.sloMs, oursChance, share, bin });
      // And how much more often than the model gives them training's misses come (gpucolo-service.ts oursExcess).
      if (active && !holdCap) countOursSecond(sm, missed * part, Math.max(0, oursChance - aloneNow));
      sm.lnPriceSlow = ewma(sm.lnPriceSlow, Math.log(sm.price), 1 / o.horizonS);
      sm.scored++;
      sm.missed += missed;
    }
    models[id] = sm;

    // For the record: the tail level at which a second's chance of a miss is what the floor allows (alone's chance
    // plus training's part), read with the noise: the level the duty is steering near.
    const allowedChance = Math.min(0.5, aloneNow + allowedExtra(o, sm.aloneMiss ?? 0));
    const targetMs = m.sloMs * Math.exp(-sigma * normalQuantile(1 - allowedChance));
    const terms: Record<string, number> = {
      measuredMs: measured ?? 0, targetMs, sloMs: m.sloMs, rateRps, count: m.count, duty, price: sm.price, noise: sigma,
    };
    let next: number;
    let reason: string;
    const windowMs = w && w.count > 0 ? metricOf(w, fastMetric(o)) : 0;
    const windowOver = w !== undefined && w.count > 0 && windowMs > w.sloMs;
    // A miss inference has as often with training out of the way does not send the duty to the cap, away from
    // saturation (gpucolo-service.ts missExcused).
    const excused = windowOver && sm.s0Ms !== null && iNow !== null && missExcused(sm)
      && utilisation(loadRps, sm.s0Ms, iNow, duty, closed) < REFLEX_MAX_LOAD;
    if (excused) terms.excusedWindowMs = windowMs;
    if (windowOver && !excused) {
      next = o.maxDuty;
      reason = WINDOW_OVER_REASON[fastMetric(o)]!;
      terms.windowMs = windowMs;
    } else if (m.count === 0 && m.rateRps > 0) {
      next = o.maxDuty;
      reason = 'requests waiting, none finished: duty to cap';
    } else if (ff.serviceId === id && ff.risePct >= JUMP_PCT) {
      // The load jumped (the rate tracker's rise, in one window or a few): the queue it builds does not wait for
      // the tail to show it. Cap first; the model brings the duty down from there.
      next = o.maxDuty;
      reason = 'arrival rate jumped: duty to cap';
      terms.risePct = ff.risePct;
      terms.refRateRps = ff.refRps;
    } else if (sm.s0Ms === null) {
      // Nothing is known yet: keep training all but asleep until inference alone has been read.
      next = o.maxDuty;
      reason = 'measuring inference alone';
    } else if (modelReady(sm)) {
      const plant = { s0Ms: sm.s0Ms, interference: iNow!, periodMs: o.dutyPeriodMs, closed };
      const grid = dutyGrid(o.maxDuty);
      // The plant at the tracked load, read three times below (pure reads: one object for all three).
      const atLoad = atRate(plant, rateRps);
      const row = missRow(atLoad, kappa, m.sloMs, sigma, grid, (nowRow = scratchRow(nowRow, grid)));
      const surprise = surpriseOf(sm.lnRateVar, sm.lnRateCov, sm.lnRateMean === null ? Infinity : Math.exp(sm.lnRateMean));
      // The forecast moves slowly: its mix is computed once a second (on the estimator's whole seconds) and kept.
      if (surprise > 0.02 && (sm.mix === null || sm.mix.length !== grid.length || steps % keep === 0)) {
        sm.mix = forecastMix(sm, plant, kappa, m.sloMs, sigma, grid, rateRps);
      }
      const mix = surprise > 0.02 && sm.mix !== null ? sm.mix : row;
      // Just after the load rose, a miss counts up to ALERT_FACTOR times: a change is when the model is least
      // right, and a window missed then leaves the load unsettled. In full for a load whose seconds predict each
      // other (a step is news), not at all for independent bursts (the forecast mix already covers them).
      const alert = alertUntilMs !== null && now < alertUntilMs;
      // Training's misses seen more often than the model foresees them make each foreseen one dearer (oursExcess).
      const excess = oursExcess(sm);
      const price = sm.price * excess * (alert ? 1 + (ALERT_FACTOR - 1) * (1 - surprise) : 1);
      if (excess > 1) terms.excess = excess;
      const k = pickDuty(grid, row, mix, surprise, price);
      if (alert) terms.alert = 1;
      next = grid[k]!;
      reason = 'model: awake time against the chance of a miss at this load';
      if (holdCap && next < o.maxDuty) {
        next = o.maxDuty;
        reason = 'inference alone at saturation: duty to cap';
      }
      // Set one by one, in this order (no object literal copied in per window).
      terms.s0Ms = sm.s0Ms; terms.interference = iNow!; terms.kappa = kappa; terms.closedLoop = closed ? 1 : 0;
      terms.missChance = missOf(row[k]!, mix[k]!, surprise); terms.surprise = surprise; terms.aloneMissChance = aloneNow;
      terms.aloneUtilisation = (loadRps * sm.s0Ms) / 1000; terms.modelMs = kappa * tailMs(atDuty(atLoad, next)); terms.aloneModelMs = aloneMs;
      // A tail far above what the model expects at this load (a backlog still draining after a burst) holds the
      // duty where it is until it clears.
      if (w && w.count > 0 && metricOf(w, fastMetric(o)) > BACKLOG_FACTOR * kappa * tailMs(atDuty(atLoad, duty))) {
        next = Math.max(next, duty);
        reason = 'tail far above the model (backlog): hold the duty';
      }
    } else if (measured !== null) {
      // Identifying I (s0 known): walk the duty down while the tail stays marginPct under the SLO, so that awake
      // windows show the interference; up at once above that line (and the fast path guards the SLO itself).
      // Where the tail keeps the duty too high for the mean to show I, the tail itself is read (the model at
      // kappa 1, solved for I): a rough first reading, which the means replace when the duty comes down.
      if (duty > I_READ_MAX_DUTY && steps > TAIL_READING_AFTER && m.count >= 5 && sm.s0Ms !== null) {
        const reading = xiOf(interferenceFromTail(measured, { s0Ms: sm.s0Ms, duty: dutyEff, periodMs: o.dutyPeriodMs, rateRps: loadRps, closed }));
        sm.iSum += TAIL_READING_WEIGHT * reading;
        sm.iWeight += TAIL_READING_WEIGHT;
        models[id] = sm;
      }
      const lineMs = m.sloMs * (1 - o.marginPct / 100);
      const error = (measured - lineMs) / lineMs;
      next = error > 0 ? duty + 0.5 * error : duty - o.maxStepDown / 2;
      reason = error > 0 ? 'identifying: tail near the SLO' : 'identifying: relax the duty to read the interference';
      terms.error = error;
      terms.lineMs = lineMs;
    } else {
      continue; // no request finished: nothing to steer on
    }
    // The service that needs the most sleep drives; on a tie, the one closest to (or furthest past) its SLO.
    const ratio = (measured ?? 0) / m.sloMs;
    if (!want || next > want.duty || (next === want.duty && ratio > want.ratio)) want = { duty: next, reason, terms, serviceId: id, ratio };
  }

  const activeSinceMs = active ? (fresh ? now : s.activeSinceMs) : null;
  // A copy, then its fields set one by one: a spread with a dozen keys after it defines each of them anew, at
  // several times the cost of setting a field the copy already has.
  const out: GpucoloState = { ...s };
  out.startMs = startMs;
  out.restartMs = restartMs;
  out.restartSinceMs = restartSinceMs;
  out.alertUntilMs = alertUntilMs;
  out.recent = recent;
  out.recentDuty = recentDuty;
  out.recentActive = active;
  out.steps = steps;
  out.activeSinceMs = activeSinceMs;
  out.rateTrackers = ff.trackers;
  out.models = models;
  const dutyAlpha = 1 - Math.exp(-o.innerPeriodMs / 5_000);
  if (saturated) out.saturatedMs = now;
  // The awake time the outer tier reads as the share's (measured awake): not the periods held at the cap for a
  // saturation, whose duty is the cap's whatever the share.
  if (!active || !want) {
    if (active && !held) { out.awakeSum = s.awakeSum + (1 - duty); out.awakeN = s.awakeN + 1; }
    out.duty = duty;
    out.dutyAvg = ewma(s.dutyAvg, duty, dutyAlpha);
    return { state: out, knobs: input.knobs, decisions: [] };
  }

  let next = clamp(want.duty, 0, o.maxDuty);
  if (next < duty) next = Math.max(next, duty - o.maxStepDown);
  next = next >= o.maxDuty ? o.maxDuty : roundTo(next, 3);
  const modeSwitch = input.knobs.pacing.mode !== 'duty';
  if (Math.abs(next - duty) < 0.005 && next !== o.maxDuty && !modeSwitch) next = duty;
  out.duty = next;
  out.dutyAvg = ewma(s.dutyAvg, next, dutyAlpha);
  if (!held) { out.awakeSum = s.awakeSum + (1 - next); out.awakeN = s.awakeN + 1; }
  if (next === duty && !modeSwitch) return { state: out, knobs: input.knobs, decisions: [] };
  want.terms.newDuty = next;
  const decisions: Decision[] = [decision('inner', 'pacing', duty, next, want.reason, want.terms, want.serviceId)];
  return { state: out, knobs: { ...input.knobs, pacing: { mode: 'duty', duty: next, periodMs: o.dutyPeriodMs } }, decisions };
}
