/**
 * gpucolo outer tier: the training MPS share, every outerPeriodMs. Every change restarts training (5-15 s of no
 * training on the paper's GPU), so the share moves only when the move pays for its restart.
 *
 * For each candidate share c (minSharePct to 100 by 5), over the load forecast (the histogram of 1 s arrival
 * rates over the last horizonS: a repeating load's cycle is in it; a share must hold for the loads it will meet
 * until the next change):
 *   expected(c) = T(c) * mean of (1 - the duty the inner tier would buy at c)      (gpucolo-model.ts pickDuty)
 *   miss(c)     = mean of the chance of a missed second at that duty, the next second's load as unpredictable
 *                 as the load has been
 * T(c) is training speed per unit of awake time, measured at the shares visited and carried to other shares as
 * share^beta; the interference is carried as I(c) = I(now) * (c / now)^gamma; kappa, the noise and the price of a
 * miss are the inner tier's; every load of the forecast counts, those inference alone barely serves included
 * (there training's part is what it adds to alone's chance of a miss). beta and gamma are the slopes fitted
 * (log-log) over the shares visited (each share's I read against s0 now, interferenceAgainst; gamma's only over
 * those whose I stands 2 sd of one s0 reading clear of zero, readableAbove); until two (for gamma, two such) have
 * been measured they are ranges ([gammaPriorLow, gammaPriorHigh], [betaPriorLow, betaPriorHigh]):
 * expected(c) is averaged over them, a move's misses judged at the middle of gamma's range for a larger share and
 * at its flat end for a smaller one. A larger share is planned only at duties up to RAISE_MAX_DUTY (the model is
 * least sure where a large interference is held back by much sleep) and resumes training at the duty cap, with
 * its interference read afresh by the inner tier.
 *
 * A share qualifies when miss(c) is within alone's misses on the same forecast (the same model, so its errors
 * cancel) plus floorSharePct of the floor's slack, and its forecast peak, met awake at the median load's duty
 * for the period before the duty answers, stays below saturation. The qualifying share with the most expected
 * training is taken when
 *   - expected(c) * (horizonS - restart) - expected(now) * horizonS, as a share of expected(now) * horizonS, is
 *     at least minGainPct times one more than the restarts of the last hour (each further restart must promise
 *     more), restart = the measured time from a change until training runs again (restartPriorMs before one
 *     has been seen) plus the iteration in flight that dies with the process, and the forecast's peak has held
 *     for PEAK_STABLE_S;
 *   - or, without that test, as a safety move: the share in force is expected to break the floor itself and the
 *     misses counted as training's over the last minutes agree, or its peak saturates the server;
 *   - and the restart budget allows it (outer.budgetLeft): never restartsPerHour in an hour, and since the start
 *     no more than restartsPerHour per hour of run, at least one (the initial share is a guess), a safety move
 *     included (until its token comes, the inner tier's duty holds the SLO);
 *   - and the share in force has been measured for settleS since training last started.
 * The inner tier meanwhile absorbs every transient with the duty. Where even its cap adds more misses than the
 * floor allows at the load (a load near what inference alone can serve), training stops until the load falls
 * (stopAtCap).
 */
import { clamp, decision, hold, sharePct, trainingActive } from './common.ts';
import { allowedExtra, aloneChance, interferenceNow, modelReady, noiseOf, quantileBin, readableAbove, saturatedWithin } from './gpucolo-service.ts';
import { atRate, binRate, dutyGrid, missOf, missRow, pickDuty, surpriseOf, tailMs, utilisation, weightedSlope } from './gpucolo-model.ts';
import type { GpucoloOptions, GpucoloState, ServiceModel, ShareRecord } from './gpucolo-options.ts';
import type { ControlInput, Decision, Knobs, StepResult } from './types.ts';

const HOUR_MS = 3_600_000;
/** Forecast mass (s of load seen) before the outer tier trusts it. */
const FORECAST_READY_S = 60;
/** The peak a share must serve awake: this quantile of the forecast, among rates alone serves below PEAK_ALONE_MAX utilisation. */
const PEAK_QUANTILE = 0.99;
const PEAK_ALONE_MAX = 0.9;
/** Time at a share (s) before its measured awake time replaces the model's for it. */
const MEASURED_AFTER_S = 120;
/** Time the forecast's peak must have held before a share is planned for gain (s). */
const PEAK_STABLE_S = 60;
/** Utilisation at the peak, with training awake, above which a share is not planned. */
const PEAK_LOAD_MAX = 0.95;
/** Memory of a share's measurements, in weight units (s of awake training; windows of interference). */
const T_MEMORY = 300;
/** Largest duty a larger share may be planned at. */
const RAISE_MAX_DUTY = 0.25;
const I_MEMORY = 200;
/** Training stopped at the duty cap resumes once the arrivals are below this part of theirs at the stop. */
const RESUME_LOAD_FALL = 0.9;

/** Exponent fitted over the shares visited whose value is above `floor`, or null (fewer than two far enough apart). */
export function fitExponent(shares: readonly ShareRecord[], value: (r: ShareRecord) => number, weight: (r: ShareRecord) => number, floor = 0): number | null {
  const pts = shares.filter((r) => value(r) > floor && weight(r) > 0).map((r) => ({ x: Math.log(r.pct), y: Math.log(value(r)), w: Math.min(1, weight(r) / 20) }));
  if (pts.length < 2) return null;
  const xs = pts.map((p) => p.x);
  if (Math.max(...xs) - Math.min(...xs) < Math.log(1.15)) return null;
  return weightedSlope(pts);
}

/**
 * A share's recorded I read against s0 now: what was measured is the batch time with training awake, s0 (1 + I)
 * at the s0 of the time; s0 is first read from a second or so at the duty cap (a few percent off, which at a small
 * share is I's own size) and read again while training restarts, so an older record is brought to the s0 the
 * newer ones are read against before the exponent is fitted across them.
 */
export function interferenceAgainst(r: ShareRecord, s0Ms: number | null): number {
  return r.s0Ms > 0 && s0Ms !== null && s0Ms > 0 ? Math.max(0, ((1 + r.interference) * r.s0Ms) / s0Ms - 1) : r.interference;
}

interface Prediction {
  /** Expected training, iterations per second. */
  expected: number;
  /** Expected share of 1 s windows past the SLO, the share a plan may use (alone's misses plus floorSharePct of the
   * floor's slack) and the floor itself (alone's misses plus all of the slack). */
  miss: number;
  allowed: number;
  floorMiss: number;
  meanDuty: number;
  /** Price of a miss in iterations (the inner tier's price carried from awake time to iterations). */
  priceIters: number;
  /** Utilisation at the load's peak with this share awake: above 1, every step up to the peak costs a window. */
  peakLoad: number;
}

/**
 * Expected training and SLO misses of share `c` for one service over its load forecast: at each load the inner
 * tier sees, the duty it would buy (gpucolo-model.ts pickDuty) and the miss that duty risks over the next second.
 */
function predict(o: GpucoloOptions, sm: ServiceModel, sloMs: number, share: number, c: number, gamma: number, trainNow: number, beta: number): Prediction {
  const iNow = interferenceNow(sm)!;
  const interference = c === share ? iNow : iNow * (c / share) ** gamma;
  const kappa = Math.exp(sm.lnKappa);
  const sigma = noiseOf(sm);
  const closed = (sm.closed ?? 0) > 0.5;
  const trainC = trainNow * (c / share) ** beta;
  // The plain price: the inner tier's duty is picked at it times oursExcess, which the plan leaves out (taking it in
  // cost paper-burst's floor on the heavy-tail plant: bench/results/README.md, Synthetic load shapes).
  const priceIters = (sm.lnPriceSlow === null ? sm.price : Math.exp(sm.lnPriceSlow)) * trainNow;
  const priceC = trainC > 0 ? priceIters / trainC : sm.price;
  // A larger share is planned only where the model says it runs with little sleep: the model is least sure of a
  // plant it has not measured, and most wrong where a large interference is held back by much sleep.
  const grid = c > share ? dutyGrid(o.maxDuty).filter((d) => d <= RAISE_MAX_DUTY + 1e-9) : dutyGrid(o.maxDuty);
  const plant = { s0Ms: sm.s0Ms!, interference, periodMs: o.dutyPeriodMs, closed };
  const surprise = surpriseOf(sm.lnRateVar, sm.lnRateCov, sm.lnRateMean === null ? Infinity : Math.exp(sm.lnRateMean));
  const bins = sm.rates.bins.map((bin, j) => ({ rateRps: binRate(bin), weight: sm.rates.weights[j]! }));
  // Every load counts, those inference alone barely serves included: there training's part is what it adds to
  // alone's chance of a miss (nothing where alone misses anyway, much where alone just makes it).
  const alones = bins.map((b) => aloneChance(sm, tailMs({ ...plant, interference: 0, duty: 0, rateRps: b.rateRps }), sloMs));
  const rows = bins.map((b, i) => missRow(atRate(plant, b.rateRps), kappa, sloMs, sigma, grid).map((p) => Math.max(p, alones[i]!)));
  // The whole forecast as every load's next second, not the inner tier's weights from the load now (nextWeights):
  // a plan holds for hours, and planned with them it lost three floors (bench/results/README.md, The matrix).
  const mix = grid.map(() => 0);
  let mass = 0;
  bins.forEach((b, i) => { mass += b.weight; for (let k = 0; k < grid.length; k++) mix[k]! += b.weight * rows[i]![k]!; });
  if (mass > 0) for (let k = 0; k < grid.length; k++) mix[k]! /= mass;
  const medianRps = binRate(quantileBin(sm.rates, 0.5));
  let medianDuty = 0, awake = 0, miss = 0, aloneMiss = 0, dutySum = 0;
  bins.forEach((b, i) => {
    const k = pickDuty(grid, rows[i]!, mix, surprise, priceC);
    const duty = grid[k]!;
    if (b.rateRps === medianRps) medianDuty = duty;
    awake += b.weight * (1 - duty);
    dutySum += b.weight * duty;
    miss += b.weight * missOf(rows[i]![k]!, mix[k]!, surprise);
    aloneMiss += b.weight * alones[i]!;
  });
  // Allowed: alone's misses on the same forecast (the same model, so its errors cancel) plus training's part.
  const aloneShare = mass > 0 ? aloneMiss / mass : 0;
  const allowed = (aloneShare + allowedExtra(o, aloneShare)) * mass;
  const floorMiss = (aloneShare + allowedExtra(o, aloneShare, 1)) * mass;
  if (!(mass > 0)) return { expected: 0, miss: 0, allowed: 0, floorMiss: 0, meanDuty: 0, priceIters, peakLoad: 0 };
  // The load's peak (99th percentile of its 1 s rates, among those inference alone can serve) meets this share
  // at the duty of the median load for a period before the duty answers: its utilisation then.
  let peakRps = 0, below = 0;
  for (const b of [...bins].sort((x, y) => x.rateRps - y.rateRps)) {
    if ((b.rateRps * sm.s0Ms!) / 1000 >= PEAK_ALONE_MAX) break;
    below += b.weight;
    peakRps = b.rateRps;
    if (below >= PEAK_QUANTILE * mass) break;
  }
  const peakLoad = utilisation(peakRps, sm.s0Ms!, interference, medianDuty, closed);
  return { expected: trainC * (awake / mass), miss: miss / mass, allowed: allowed / mass, floorMiss: floorMiss / mass, meanDuty: dutySum / mass, priceIters, peakLoad };
}

/**
 * Restarts the budget still allows now: never restartsPerHour in any hour, and since the start no more than
 * restartsPerHour per hour of run, at least one (the initial share is a guess). A safety move waits for its token
 * like any other: until then the inner tier holds the SLO with the duty (up to the cap), so that the restart
 * rate is bounded on every load, however short the run.
 */
export function budgetLeft(o: GpucoloOptions, s: GpucoloState, now: number): number {
  const inHour = o.restartsPerHour - s.restartTimesMs.length;
  const earned = Math.max(1, Math.floor((o.restartsPerHour * (now - (s.startMs ?? now))) / HOUR_MS));
  return Math.min(inHour, earned - s.restarts);
}

/**
 * The service models at a new share: interference read afresh (the inner tier identifies it, walking the duty down
 * while the tail allows: a value carried from the old share by an exponent not yet measured would be read as
 * measured, and a pessimistic one would hold the duty where no reading can correct it); the price of a miss kept in
 * iterations, so in awake time it scales with the speed (`scale`: new speed over old).
 */
function atNewShare(models: Record<string, ServiceModel>, scale: number): Record<string, ServiceModel> {
  const out: Record<string, ServiceModel> = {};
  for (const [id, m] of Object.entries(models)) {
    out[id] = { ...m, iSum: 0, iWeight: 0, price: m.price / scale, lnPriceSlow: m.lnPriceSlow === null ? null : m.lnPriceSlow - Math.log(scale) };
  }
  return out;
}

/** The middle of the prior range of the training-speed exponent. */
function betaMidOf(o: GpucoloOptions): number {
  return (o.betaPriorLow + o.betaPriorHigh) / 2;
}

/** The training-speed exponent fitted over the shares visited (within [0.1, 1.5]), or null. */
function fittedBeta(shares: readonly ShareRecord[]): number | null {
  const fit = fitExponent(shares, (r) => r.trainPerAwake, (r) => r.tWeight);
  return fit === null ? null : clamp(fit, 0.1, 1.5);
}

/** Arrivals over the outer period, all services (rps). */
function arrivalRps(input: ControlInput): number {
  let sum = 0;
  for (const w of input.services) sum += w.rateRps;
  return sum;
}

/**
 * Training's part of a second's chance of a miss at the duty cap, at this period's load, by the model (the inner
 * tier's), and the floor's slack: for the service where the first most exceeds the second.
 */
function capExcess(o: GpucoloOptions, s: GpucoloState, input: ControlInput): { added: number; allowed: number } {
  let worst = { added: 0, allowed: Infinity };
  for (const w of input.services) {
    const m = s.models[w.serviceId];
    if (!m || !modelReady(m) || !(w.rateRps > 0)) continue;
    const plant = { s0Ms: m.s0Ms!, interference: interferenceNow(m)!, periodMs: o.dutyPeriodMs, closed: (m.closed ?? 0) > 0.5 };
    const pCap = missRow(atRate(plant, w.rateRps), Math.exp(m.lnKappa), w.sloMs, noiseOf(m), [o.maxDuty])[0]!;
    const pAlone = aloneChance(m, tailMs({ ...plant, interference: 0, duty: 0, rateRps: w.rateRps }), w.sloMs);
    const added = pCap - pAlone;
    const allowed = allowedExtra(o, m.aloneMiss ?? 0, 1);
    if (added - allowed > worst.added - worst.allowed) worst = { added, allowed };
  }
  return worst;
}

/**
 * The share training resumes at after a stop, with `budget` restarts left. A resume is a restart, so it may
 * change the share at no further cost. While the budget leaves a restart after it, the share in force (training
 * can be stopped again). On the last one nothing is left to stop training at the next such load: the smallest
 * share, the least interference at the cap. Not a share the model picks: at the loads that stop training (near
 * what inference alone serves) the model reads a middle share as safe where it is not (tried: on a 70-cell part
 * of the matrix two rows lost their floor).
 */
function resumeShare(o: GpucoloOptions, share: number, budget: number): number {
  return budget > 1 || share <= o.minSharePct ? share : sharePct(o.minSharePct, o.minSharePct);
}

/**
 * Training stopped at the duty cap, and resumed. The duty cap (0.95, every pacing path's) is as far as the inner
 * tier goes; at a load where even the cap adds more to a second's chance of a miss than the floor's slack
 * allows (by the model, at this period's load), training stops, once the duty has sat at the cap for seconds
 * (dutyAvg) and training has run settleS since it last started. Training at the cap makes little progress (a
 * twentieth of its time awake): stopping it costs little. Resuming it is a restart, spent once the arrivals
 * have fallen below RESUME_LOAD_FALL of theirs at the stop and a restart is left, at the share resumeShare picks.
 * A stop is made only while two are (the resume's, and one for the share's own moves: on a short run the one
 * restart the budget allows is the share's), or one at a load inference alone barely serves (there a share move
 * buys nothing: the inner tier holds the duty at the cap whatever the share). Null: neither.
 */
function stopAtCap(o: GpucoloOptions, s: GpucoloState, input: ControlInput, now: number): StepResult<GpucoloState> | null {
  const stop = s.stopped ?? null;
  if (stop !== null && !input.knobs.trainingRunning) {
    const load = arrivalRps(input);
    const budget = budgetLeft(o, s, now);
    if (load > RESUME_LOAD_FALL * stop.loadRps || budget <= 0) return hold(s, input);
    const share = input.knobs.mpsSharePct;
    const next = resumeShare(o, share, budget);
    const terms = { loadRps: load, loadAtStopRps: stop.loadRps, stoppedS: (now - stop.atMs) / 1000, sharePct: share, newSharePct: next };
    const decisions = [decision('outer', 'trainingRunning', 0, 1, 'arrivals fell below the load training was stopped at: training resumes at the duty cap', terms)];
    if (next !== share) decisions.push(decision('outer', 'mpsSharePct', share, next, 'the last restart the budget allows: training resumes at the smallest MPS share', terms));
    return {
      state: {
        ...s, stopped: null, duty: o.maxDuty, restartSinceMs: now, restarts: s.restarts + 1, restartTimesMs: [...s.restartTimesMs, now], awakeSum: 0, awakeN: 0,
        ...(next !== share ? { models: atNewShare(s.models, (next / share) ** (fittedBeta(s.shares) ?? betaMidOf(o))), lastMpsChangeMs: now } : {}),
      },
      knobs: { ...input.knobs, trainingRunning: true, mpsSharePct: next, pacing: { mode: 'duty', duty: o.maxDuty, periodMs: o.dutyPeriodMs } },
      decisions,
    };
  }
  if (stop !== null) s.stopped = null; // started again by another hand: the record no longer holds
  if (!trainingActive(input) || s.activeSinceMs === null || (now - s.activeSinceMs) / 1000 < o.settleS) return null;
  const saturatedNow = saturatedWithin(s, now, o.outerPeriodMs);
  if (s.dutyAvg < o.maxDuty - 0.01 || budgetLeft(o, s, now) < (saturatedNow ? 1 : 2)) return null;
  const worst = capExcess(o, s, input);
  if (worst.added <= worst.allowed) return null;
  const load = arrivalRps(input);
  const terms = { loadRps: load, dutyAvg: s.dutyAvg, addedChance: worst.added, floorSlack: worst.allowed, sharePct: input.knobs.mpsSharePct };
  return {
    state: { ...s, stopped: { atMs: now, loadRps: load } },
    knobs: { ...input.knobs, trainingRunning: false },
    decisions: [decision('outer', 'trainingRunning', 1, 0, 'duty at the cap adds more misses than the floor allows at this load: training stopped until the load falls', terms)],
  };
}

/**
 * One outer decision of gpucolo. `input.services` holds windows merged over the outer period.
 * Long on purpose (about 160 lines): the gates (evidence, settling, budget, forecast, peak), the evaluation of every
 * candidate share and the gain test share the exponent ranges and the share in force's own record; the pure parts
 * (predict, the exponent fits, the budget) are functions above.
 */
export function gpucoloOuter(o: GpucoloOptions, state: GpucoloState, input: ControlInput): StepResult<GpucoloState> {
  const now = input.nowMs;
  let s: GpucoloState = { ...state, restartTimesMs: state.restartTimesMs.filter((t) => now - t < HOUR_MS) };
  const atCap = stopAtCap(o, s, input, now);
  if (atCap) return atCap;
  if (!trainingActive(input) || s.activeSinceMs === null) return hold(s, input);
  // A load inference alone barely serves (gpucolo-inner.ts saturatedMs) within the last settleS: the inner tier
  // holds the duty at the cap for it whatever the share, so such a stretch is no evidence of what the share
  // leaves training (no speed reading), and no move for gain is made until a share has been measured settleS
  // without one: a share chased on the cap's duty (the model reads awake time as all but free next to a load
  // alone barely serves) would spend the restarts that stopping training at the cap (stopAtCap, above) needs. A
  // safety move to a smaller share (less interference left at the cap) still goes.
  const saturated = saturatedWithin(s, now, o.settleS * 1000);
  const share = input.knobs.mpsSharePct;
  const runningS = (now - s.activeSinceMs) / 1000;

  // What this share measures: training per awake time (after the 5 s speed window has filled), interference.
  const ready = Object.entries(s.models).filter(([, m]) => modelReady(m));
  let rec: ShareRecord = s.shares.find((r) => r.pct === share) ?? { pct: share, interference: 0, iWeight: 0, s0Ms: 0, trainPerAwake: 0, tWeight: 0 };
  const awake = 1 - clamp(s.dutyAvg, 0, 1);
  if (runningS >= 8 && awake >= 0.1 && !saturated && input.trainings.length > 0) {
    const ips = input.trainings.reduce((a, t) => a + (t.running ? t.itersPerSec : 0), 0);
    const dw = awake * (o.outerPeriodMs / 1000);
    const tWeight = Math.min(T_MEMORY, rec.tWeight + dw);
    rec = { ...rec, trainPerAwake: (rec.trainPerAwake * (tWeight - dw) + (ips / awake) * dw) / tWeight, tWeight };
  }
  const driver = ready.length > 0 ? ready.reduce((a, b) => (interferenceNow(b[1])! * b[1].s0Ms! > interferenceNow(a[1])! * a[1].s0Ms! ? b : a)) : undefined;
  const dm = driver?.[1];
  if (dm) rec = { ...rec, interference: interferenceNow(dm)!, iWeight: Math.min(I_MEMORY, dm.iWeight), s0Ms: dm.s0Ms ?? 0 };
  s = { ...s, shares: [...s.shares.filter((r) => r.pct !== share), rec] };

  if (ready.length === 0 || rec.tWeight <= 0) return hold(s, input);
  if (runningS < o.settleS) return hold(s, input);
  if (budgetLeft(o, s, now) <= 0) return hold(s, input);
  for (const [, m] of ready) {
    const seen = m.rates.weights.reduce((a, b) => a + b, 0);
    if (seen < FORECAST_READY_S) return hold(s, input);
  }

  const s0Now = dm?.s0Ms ?? null;
  // Only shares whose I stands clear of s0's reading error enter the fit (a 5% share can read 0.01 where it is 0.001).
  const gammaFit = fitExponent(s.shares, (r) => interferenceAgainst(r, s0Now), (r) => r.iWeight, readableAbove(dm));
  // Until two shares have been measured the exponents are ranges. A move's risk (its misses, its peak) is judged
  // at the middle of gamma's range for a larger share (which is planned only at little sleep, RAISE_MAX_DUTY, and
  // resumes at the duty cap: the inner tier covers a plant steeper than that) and at the flat end for a smaller
  // one (the least relief); its expected training is averaged over both ranges, so that no plant in them is
  // favoured.
  const gammaFitted = gammaFit === null ? null : clamp(gammaFit, 0.3, 3);
  const betaFitted = fittedBeta(s.shares);
  const gammaMid = (o.gammaPriorLow + o.gammaPriorHigh) / 2;
  const betaMid = betaMidOf(o);
  const gammaRisk = (c: number) => gammaFitted ?? (c > share ? gammaMid : o.gammaPriorLow);
  const beta = betaFitted ?? betaMid;
  const trainNow = rec.trainPerAwake;
  const sloOf = (id: string) => input.services.find((w) => w.serviceId === id)?.sloMs ?? Infinity;
  const services = ready.filter(([id]) => Number.isFinite(sloOf(id)));
  if (services.length === 0) return hold(s, input);

  // Every service's prediction. A share is planned when every service expects no more misses than allowed and
  // its peak is served awake; among those, the most expected training wins. When no share qualifies, the one
  // with the fewest misses beyond the allowance.
  const priorGammas = [o.gammaPriorLow, gammaMid, o.gammaPriorHigh];
  const priorBetas = [o.betaPriorLow, betaMid, o.betaPriorHigh];
  const evaluate = (c: number) => {
    // Every service's prediction at each exponent still open (one when fitted, or for the share in force).
    const gs = c !== share && gammaFitted === null ? priorGammas : [gammaRisk(c)];
    const byGamma = new Map(gs.map((g) => [g, services.map(([id, m]) => predict(o, m, sloOf(id), share, c, g, trainNow, beta))]));
    // The risk exponent is always among them: the middle or the flat end of an open range, else the fitted one.
    const ps = byGamma.get(gammaRisk(c))!;
    const over = Math.max(...ps.map((p) => p.miss - p.allowed));
    const breach = Math.max(...ps.map((p) => p.miss - p.floorMiss));
    const peakLoad = Math.max(...ps.map((p) => p.peakLoad));
    // Expected training over the prior ranges still open (the speed's exponent scales it directly).
    const speedRatio = c !== share && betaFitted === null ? priorBetas.reduce((a, b) => a + (c / share) ** b, 0) / priorBetas.length / (c / share) ** betaMid : 1;
    const expected = ([...byGamma.values()].reduce((a, qs) => a + Math.min(...qs.map((p) => p.expected)), 0) / byGamma.size) * speedRatio;
    return {
      expected, over, breach, peakLoad, ok: over <= 0 && peakLoad <= PEAK_LOAD_MAX,
      miss: Math.max(...ps.map((p) => p.miss)), allowed: Math.min(...ps.map((p) => p.allowed)), meanDuty: Math.max(...ps.map((p) => p.meanDuty)),
    };
  };
  type Eval = ReturnType<typeof evaluate>;
  const better = (a: Eval, b: Eval) => (a.ok !== b.ok ? a.ok : a.ok ? a.expected > b.expected : a.over + Math.max(0, a.peakLoad - PEAK_LOAD_MAX) < b.over + Math.max(0, b.peakLoad - PEAK_LOAD_MAX));
  // The share in force is judged by what it did, not by the model: its measured training per awake time times
  // the awake time the inner tier actually left it (once a few minutes of it have been seen).
  const predictedNow = evaluate(share);
  const measuredAwake = s.awakeN * o.innerPeriodMs >= MEASURED_AFTER_S * 1000 ? s.awakeSum / s.awakeN : null;
  const now_ = measuredAwake === null ? predictedNow : { ...predictedNow, expected: trainNow * measuredAwake };
  // A safety move pays no gain test: the share in force is expected to break the floor itself (not only the
  // planned part of it) or to meet its peak saturated. The books must agree: the misses counted as training's
  // over the last minutes exceed the floor's slack.
  const booksBreached = services.some(([, m]) => (m.oursMiss ?? 0) > allowedExtra(o, m.aloneMiss ?? 0, 1));
  const unsafe = (booksBreached && now_.breach > 0) || now_.peakLoad > 1;
  // Without a safety reason, a move for gain needs a forecast peak that has held for PEAK_STABLE_S (the loads
  // still rising, a share would be planned on less than it will meet): until then there is nothing to weigh.
  const peakUnstable = services.some(([, m]) => m.peakSinceMs === null || now - m.peakSinceMs < PEAK_STABLE_S * 1000);
  if (!unsafe && peakUnstable) return hold(s, input);
  const candidates = new Set<number>([share]);
  for (let c = Math.ceil(o.minSharePct / 5) * 5; c <= 100; c += 5) candidates.add(sharePct(c, o.minSharePct));
  candidates.add(sharePct(o.minSharePct, o.minSharePct));
  const evals = new Map<number, Eval>([[share, now_]]);
  let best = share;
  let bestP = now_;
  for (const c of candidates) {
    if (c === share) continue;
    const p = evaluate(c);
    evals.set(c, p);
    if (better(p, bestP)) { best = c; bestP = p; }
  }
  if (best === share) return hold(s, input);
  const restartS = (s.restartMs ?? o.restartPriorMs) / 1000 + (trainNow > 0 ? 0.5 / trainNow : 0);
  const horizon = o.horizonS;
  // A safety move goes to a share that is planned, or halves the excess.
  // Next to a load inference alone barely serves, a smaller share is a safety move when the share in force is
  // unsafe: the duty is held at the cap there, and what the cap leaves is the share's interference.
  const safety = unsafe && (bestP.ok || bestP.over < now_.over / 2 || (saturated && best < share));
  if (saturated && !(safety && best < share)) return hold(s, input);
  if (safety && best < share) {
    // The least step down that qualifies: a safety move fixes the breach, it does not replan on a model that has
    // just been wrong.
    for (const [c, p] of [...evals].sort((a, b) => b[0] - a[0])) {
      if (c < share && c > best && p.ok) { best = c; bestP = p; break; }
    }
  }
  // Otherwise, over the horizon: the training gained after the restart, less the training the restart stops.
  const gain = (bestP.expected - now_.expected) * Math.max(0, horizon - restartS) - now_.expected * restartS;
  const gainPct = now_.expected > 0 ? (gain / (now_.expected * horizon)) * 100 : Infinity;
  // Each further restart within the hour must promise more (minGainPct times one more than the restarts of the
  // last hour): at a steady load the share settles instead of chasing the noise of its own estimates.
  const needPct = o.minGainPct * (1 + s.restartTimesMs.length);
  if (!safety && !(gain > 0 && gainPct >= needPct)) return hold(s, input);
  const budget = budgetLeft(o, s, now);
  if (budget <= 0) return hold(s, input);
  if (!safety && peakUnstable) return hold(s, input);

  const raising = best > share;
  const terms: Record<string, number> = {
    sharePct: share, newSharePct: best, expectedNow: now_.expected, expectedNew: bestP.expected, predictedGainPct: gainPct,
    peakLoadNow: now_.peakLoad, peakLoadNew: bestP.peakLoad, meanDutyNow: now_.meanDuty, meanDutyNew: bestP.meanDuty,
    missNow: now_.miss, missNew: bestP.miss, missAllowed: now_.allowed,
    gamma: gammaRisk(best), gammaFitted: gammaFit === null ? 0 : 1, beta, betaFitted: betaFitted === null ? 0 : 1,
    restartS, horizonS: horizon, budgetLeft: budget, trainPerAwake: trainNow, neededGainPct: needPct,
  };
  const reason = safety && !raising
    ? 'model: this share is expected to miss the SLO more than allowed: lower MPS share'
    : raising ? 'model: more training at a larger MPS share pays for the restart' : 'model: less sleep at a smaller MPS share pays for the restart';
  const driverId = driver?.[0];
  const decisions: Decision[] = [decision('outer', 'mpsSharePct', share, best, reason, terms, driverId)];
  // A larger share resumes training with the duty at the cap: its interference is not known yet, and the
  // inner tier walks the duty down from there as it reads it.
  const dutyAfter = raising ? o.maxDuty : s.duty;
  const knobs: Knobs = raising
    ? { ...input.knobs, mpsSharePct: best, pacing: { mode: 'duty', duty: dutyAfter, periodMs: o.dutyPeriodMs } }
    : { ...input.knobs, mpsSharePct: best };

  // The new share's interference read afresh, the price carried (atNewShare).
  s = {
    ...s, duty: dutyAfter, models: atNewShare(s.models, (best / share) ** beta), lastMpsChangeMs: now, restartSinceMs: now, restarts: s.restarts + 1, awakeSum: 0, awakeN: 0,
    restartTimesMs: [...s.restartTimesMs, now],
  };
  return { state: s, knobs, decisions };
}

