/**
 * What gpucolo knows of one inference service (ServiceModel) and how it is read: the identified interference and
 * noise, the chance inference alone misses, the load the server carries, the floor's allowance. The inner tier
 * (gpucolo-inner.ts) updates the model every period; the outer tier (gpucolo-outer.ts) plans shares on it.
 */
import { clamp } from './common.ts';
import { atDuty, atRate, ewma, interferenceOf, loadCorrelation, missChance, missRowOn, binRate, scratchRow, type PlantPoint } from './gpucolo-model.ts';
import type { ChargedMiss, GpucoloOptions, GpucoloState, ServiceModel, RateHistogram } from './gpucolo-options.ts';
import type { ControlInput, LatencyWindow } from './types.ts';
import { metricOf, type LatencyMetric } from './window.ts';

/** Weight of readings (in windows at zero duty) before the interference counts as identified. */
export const I_READY = 2;
/** Calibration updates before the noise counts as measured, and the noise assumed until then. */
const NOISE_READY = 25;
export const INITIAL_NOISE = 0.3;
/**
 * Least noise the miss chances read: a second's tail is one order statistic of its requests (with 100 or fewer, the
 * slowest), heavier-tailed above than the log-normal fitted to its spread, most of all when the spread is small.
 */
const MIN_NOISE = 0.08;
/** Price of a missed window (in awake time) at the start (its bounds and step: gpucolo-inner.ts). */
export const INITIAL_PRICE = 25;
/** Spread of alone's log tail around the model until measured, the EWMA weight of its readings, and the readings
 * before it counts as measured. */
const ALONE_NOISE = 0.25;
const ALONE_ALPHA = 0.05;
const ALONE_READY = 10;
/** Alone utilisation at or above which a second counts as overloaded (not read for alone's bias and spread). */
const OVERLOAD = 0.95;

/**
 * Weights of the load forecast's bins as the next second's load, given the load now: the log 1 s rates read as an
 * AR(1) whose marginal is the forecast itself (its mean and variance in log rate). The next second's log rate is
 * then about normal around the forecast's mean pulled towards the load now by rho (loadCorrelation, as surpriseOf
 * reads it), with what rho leaves of the variance, (1 - rho^2) var, never less than the Poisson counting's own at
 * the load now nor more than var; each bin's weight is its own times that density over the forecast's normal one.
 * At rho 0 the weights are the forecast's (independent bursts: any load it holds may come next); near rho 1 they
 * gather at the load now (a load that moves slowly: a peak hours away does not come in the next second). Written
 * into `out` (at least as long as the forecast's bins); false where there is nothing to weigh (the rate
 * statistics not read yet, or a forecast of one load), `out` then unused.
 */
export function nextWeights(sm: ServiceModel, nowRps: number, out: Float64Array): boolean {
  const { bins, weights } = sm.rates;
  if (sm.lnRateVar === null || sm.lnRateCov === null || sm.lnRateMean === null || !(nowRps > 0) || bins.length < 2) return false;
  const rho = loadCorrelation(sm.lnRateVar, sm.lnRateCov, Math.exp(sm.lnRateMean), 0);
  if (rho === null) return false;
  // Each bin's log rate into `out`, then its weight in its place.
  let mass = 0, sum = 0, sum2 = 0;
  for (let j = 0; j < bins.length; j++) {
    const x = (out[j] = Math.log(binRate(bins[j]!)));
    mass += weights[j]!;
    sum += weights[j]! * x;
    sum2 += weights[j]! * x * x;
  }
  const mean = sum / mass;
  const variance = sum2 / mass - mean * mean;
  if (!(variance > MIN_NEXT_VAR)) return false;
  const nextMean = mean + rho * (Math.log(nowRps) - mean);
  const nextVar = Math.min(variance, Math.max((1 - rho * rho) * variance, 1 / nowRps, MIN_NEXT_VAR));
  let top = -Infinity;
  for (let j = 0; j < bins.length; j++) {
    const x = out[j]!;
    out[j] = -((x - nextMean) ** 2) / (2 * nextVar) + (x - mean) ** 2 / (2 * variance);
    top = Math.max(top, out[j]!);
  }
  for (let j = 0; j < bins.length; j++) out[j] = weights[j]! * Math.exp(out[j]! - top);
  return true;
}
/** Least variance of a log rate that is weighed (a spread of 1%). */
const MIN_NEXT_VAR = 1e-4;
/** nextWeights' scratch weights. */
let nextScratch: Float64Array = new Float64Array(64);

/**
 * Chance of a miss at each duty of the grid over what the next second may bring: the load forecast's bins weighted
 * as the next second's load given the load now `nowRps` (nextWeights). Every load counts: where inference alone
 * misses anyway, every duty shares that chance and the choice is not moved.
 */
export function forecastMix(sm: ServiceModel, plant: Omit<PlantPoint, 'duty' | 'rateRps'>, kappa: number, sloMs: number, sigma: number, grid: readonly number[], nowRps: number): number[] {
  const mix = grid.map(() => 0);
  const { bins, weights } = sm.rates;
  if (nextScratch.length < bins.length) nextScratch = new Float64Array(2 * bins.length);
  const weighed = nextWeights(sm, nowRps, nextScratch);
  let mass = 0;
  // Each bin's row is read into one scratch row and dropped, on one point moved from load to load (the mix, kept
  // in the model, is the one new array).
  const row = (mixRow = scratchRow(mixRow, grid));
  const at = atDuty(atRate(plant, 0), 0);
  for (let j = 0; j < bins.length; j++) {
    const weight = weighed ? nextScratch[j]! : weights[j]!;
    if (!(weight > 0)) continue;
    mass += weight;
    at.rateRps = binRate(bins[j]!);
    missRowOn(at, kappa, sloMs, sigma, grid, row);
    for (let k = 0; k < grid.length; k++) mix[k]! += weight * row[k]!;
  }
  if (mass > 0) for (let k = 0; k < mix.length; k++) mix[k] = mix[k]! / mass;
  return mix;
}
/** forecastMix's scratch row (scratchRow). */
let mixRow: Float64Array = new Float64Array(32);

/** A service nothing has been identified about yet. */
export function emptyModel(): ServiceModel {
  return {
    s0Ms: null, s0Var: null, iSum: 0, iWeight: 0, lnKappa: 0, lnKappaSlow: null, kappaN: 0, noiseVar: null, closed: null, rates: { bins: [], weights: [] },
    price: INITIAL_PRICE, lnPriceSlow: null, scored: 0, missed: 0, peakBin: -1, peakSinceMs: null,
    lnRateMean: null, lnRateVar: null, lnRateCov: null, lastLnRate: null, aloneMiss: null, oursMiss: null, aloneBias: null, aloneVar: null, aloneN: 0,
    mix: null, charged: [], aloneBins: { bins: [], misses: [], chance: [] }, aloneSecs: 0, aloneSecMisses: 0, aloneSecChance: 0, oursSecMisses: 0, oursSecChance: 0, capWindows: 0, capOver: 0, awakeWindows: 0, awakeOver: 0,
  };
}

/**
 * The load forecast one period on: every bin's weight times `decay` (dropped at 1e-3 s or below), and the period
 * `step` (s) added to bin `add` (null: no load seen), bins kept ascending. New arrays: the state is not changed.
 */
export function decayedRates(hist: RateHistogram, decay: number, add: number | null, step: number): RateHistogram {
  const bins: number[] = [], weights: number[] = [];
  for (let j = 0; j < hist.bins.length; j++) {
    const k = hist.bins[j]!, d = hist.weights[j]! * decay;
    if (add !== null && add < k) {
      bins.push(add);
      weights.push(0 + step);
      add = null;
    }
    if (k === add) {
      bins.push(k);
      weights.push((d > 1e-3 ? d : 0) + step);
      add = null;
    } else if (d > 1e-3) {
      bins.push(k);
      weights.push(d);
    }
  }
  if (add !== null) {
    bins.push(add);
    weights.push(0 + step);
  }
  return { bins, weights };
}

/** The bin below which `q` of a histogram's mass lies (-1 for an empty one); bins in ascending order. */
export function quantileBin(hist: RateHistogram, q: number): number {
  let mass = 0;
  for (const v of hist.weights) mass += v;
  let below = 0;
  for (let j = 0; j < hist.bins.length; j++) {
    below += hist.weights[j]!;
    if (below >= q * mass) return hist.bins[j]!;
  }
  return hist.bins.length > 0 ? hist.bins[hist.bins.length - 1]! : -1;
}

/**
 * One reading of ln(alone's tail / calibrated model): running mean and variance over the first readings, EWMAs
 * after; the variance starts from ALONE_NOISE^2 and counts as measured after a few readings.
 */
export function readAlone(sm: ServiceModel, r: number): void {
  const n = sm.aloneN + 1;
  const alpha = Math.max(ALONE_ALPHA, 1 / n);
  const mean = sm.aloneBias ?? r;
  sm.aloneBias = ewma(sm.aloneBias, r, alpha);
  if (n > 1) sm.aloneVar = ewma(sm.aloneVar, (r - mean) ** 2, Math.max(ALONE_ALPHA, 1 / (n - 1)));
  sm.aloneN = n;
}

/** Chance that inference alone misses a second whose calibrated model tail is `levelMs` (its own bias and spread),
 * times how much more often than that it was seen to miss (aloneExcess). */
export function aloneChance(sm: ServiceModel, levelMs: number, sloMs: number): number {
  return Math.min(1, aloneExcess(sm) * aloneModelChance(sm, levelMs, sloMs));
}

function aloneModelChance(sm: ServiceModel, levelMs: number, sloMs: number): number {
  // Until alone has been read, its spread is taken as no wider than the co-located one (training adds spread), and
  // its level as no higher than the co-located calibration (kappa) puts the model's: a reading or two of alone
  // (the start's second at the cap) can leave it well above what the seconds next to training show, and alone's
  // chance of a miss read that high makes training's part of every miss, and of a larger share's, look small.
  const ready = sm.aloneVar !== null && sm.aloneN >= ALONE_READY;
  const sigma = ready ? Math.sqrt(sm.aloneVar!) : Math.min(ALONE_NOISE, noiseOf(sm));
  const bias = ready ? sm.aloneBias ?? 0 : Math.min(sm.aloneBias ?? 0, sm.lnKappa);
  return missChance(levelMs * Math.exp(bias), sloMs, sigma);
}

/** Memory of the alone-second counts, in seconds with training out of the way. */
const ALONE_SECOND_MEMORY = 600;
/** Misses alone (decayed count) before its excess over the model is taken. */
const ALONE_EXCESS_MISSES = 3;
const ALONE_EXCESS_MAX = 1000;

/**
 * Counts `weight` of a second with training out of the way (restarting, or at the duty cap), away from saturation:
 * whether its tail missed the SLO, and the chance the model gave it (before the excess).
 */
export function countAloneSecond(sm: ServiceModel, missed: boolean, levelMs: number, sloMs: number, weight: number, bin: number): void {
  const d = Math.exp(-weight / ALONE_SECOND_MEMORY);
  const chance = aloneModelChance(sm, levelMs, sloMs);
  sm.aloneSecs = sm.aloneSecs * d + weight;
  sm.aloneSecMisses = sm.aloneSecMisses * d + (missed ? weight : 0);
  sm.aloneSecChance = sm.aloneSecChance * d + weight * chance;
  const { bins, misses, chance: chances } = sm.aloneBins;
  const j = bins.indexOf(bin);
  // New arrays (the state is not changed in place): the bin's sums, added to or started.
  const m = (j < 0 ? 0 : misses[j]!) + (missed ? weight : 0), c = (j < 0 ? 0 : chances[j]!) + weight * chance;
  if (j < 0) {
    sm.aloneBins = { bins: [...bins, bin], misses: [...misses, m], chance: [...chances, c] };
    return;
  }
  const ms = misses.slice(), cs = chances.slice();
  ms[j] = m;
  cs[j] = c;
  sm.aloneBins = { bins, misses: ms, chance: cs };
}

/** aloneExcess at one load (rate bin): from the seconds with training out of the way at that load only. */
export function aloneExcessAt(sm: ServiceModel, bin: number): number {
  const j = sm.aloneBins.bins.indexOf(bin);
  return j < 0 ? 1 : excessOf(sm.aloneBins.misses[j]!, sm.aloneBins.chance[j]!);
}

/** Misses seen over the model's summed chances of them: 1 below ALONE_EXCESS_MISSES, within [1, ALONE_EXCESS_MAX]. */
function excessOf(misses: number, chance: number): number {
  if (misses < ALONE_EXCESS_MISSES) return 1;
  return Math.min(ALONE_EXCESS_MAX, Math.max(1, misses / Math.max(chance, 1e-6)));
}

/** Inference alone's chance of a miss in the floor's books: the model scaled by the excess seen at that load. */
export function aloneChanceAt(sm: ServiceModel, levelMs: number, sloMs: number, bin: number): number {
  return Math.min(1, aloneExcessAt(sm, bin) * aloneModelChance(sm, levelMs, sloMs));
}

/**
 * How many times more often inference alone missed than its model expected (1 until ALONE_EXCESS_MISSES misses
 * were seen; never below 1). The 1 s tail is the slowest request or two of a second: its spread is skewed, and a
 * log-normal fitted to it can put alone's chance of a miss orders of magnitude low, so that every miss reads as
 * training's. The excess scales the model, so it still follows the load.
 */
export function aloneExcess(sm: ServiceModel): number {
  return excessOf(sm.aloneSecMisses, sm.aloneSecChance);
}

/** Memory of the counts of seconds next to awake training, in seconds. */
const OURS_SECOND_MEMORY = 600;

/**
 * Counts one second next to awake training: training's part of its miss (0 when it did not miss) and the part of
 * its chance of a miss the calibrated model gives training (its chance at the duty in force less alone's).
 */
export function countOursSecond(sm: ServiceModel, missedPart: number, chance: number): void {
  const d = Math.exp(-1 / OURS_SECOND_MEMORY);
  sm.oursSecMisses = sm.oursSecMisses * d + missedPart;
  sm.oursSecChance = sm.oursSecChance * d + chance;
}

/**
 * How many times more often training's part of the misses came than the calibrated model gave it (1 until
 * ALONE_EXCESS_MISSES of them were seen; never below 1). The model's tail is log-normal around a calibration read
 * from every second; a second's slowest request has a heavier tail than that, most of all where the load moves
 * the calibration along, and the price alone takes a miss or two per doubling to learn a factor of ten, more
 * misses than a short run's slack holds. The inner tier picks the duty at the price times this excess.
 */
export function oursExcess(sm: ServiceModel): number {
  return excessOf(sm.oursSecMisses, sm.oursSecChance);
}

/** Misses kept for charging again (ServiceModel.charged). */
const CHARGED_MEMORY = 64;

/** Training's part of a miss: the share of its chance that training adds to inference alone's. */
export function trainingShare(pAlone: number, oursChance: number): number {
  const pOurs = Math.max(pAlone, oursChance);
  return pOurs > 0 ? (pOurs - pAlone) / pOurs : 0;
}

/** Records a miss charged to training (the oldest record goes past CHARGED_MEMORY). */
export function recordCharge(sm: ServiceModel, c: ChargedMiss): void {
  sm.charged = [...sm.charged.slice(-(CHARGED_MEMORY - 1)), c];
}

/**
 * Charges the recorded misses again with what is known of inference alone now (its model read from the seconds
 * with training out of the way, scaled by the excess seen at each miss's load): a miss charged to training before
 * alone's own misses had shown is partly alone's, and one charged while alone's model was still a prior may be
 * more training's than it read. Returns the change of the charged total (negative: training was overcharged); the
 * records take their new parts. Nothing changes until alone has been read (ALONE_READY readings).
 */
export function rechargeMisses(sm: ServiceModel): number {
  if (sm.charged.length === 0 || sm.aloneN < ALONE_READY) return 0;
  let delta = 0;
  let changed = false;
  const next = sm.charged.map((c) => {
    const share = trainingShare(aloneChanceAt(sm, c.aloneMs, c.sloMs, c.bin), c.oursChance);
    if (share === c.share) return c;
    changed = true;
    delta += share - c.share;
    return { aloneMs: c.aloneMs, sloMs: c.sloMs, oursChance: c.oursChance, share, bin: c.bin };
  });
  if (changed) sm.charged = next;
  return delta;
}

/**
 * The estimator's reading of a second's tail as the SLO is scored on it: nearest rank, so with 100 requests or
 * fewer a second's p99 is its slowest request (the windows' merged CDF would read lower); otherwise the merge.
 */
export function secondTail(m: LatencyWindow, metric: LatencyMetric): number {
  if (metric === 'p99' && m.count <= 100) return m.maxMs;
  if (metric === 'p95' && m.count <= 20) return m.maxMs;
  return metricOf(m, metric);
}

/** Requests per second the server carries in a window: the arrivals, or the completions when a queue drains. */
export function serverLoad(w: LatencyWindow): number {
  return Math.max(w.rateRps, w.windowMs > 0 ? (w.count * 1000) / w.windowMs : 0);
}

/** The duty in force: the knobs' if they carry a duty (an actor may have overridden it), else the state's. */
export function currentDuty(state: GpucoloState, input: ControlInput): number {
  return input.knobs.pacing.mode === 'duty' ? input.knobs.pacing.duty : state.duty;
}

/** The identified interference of the share in force, or null while there is too little evidence. */
export function interferenceNow(m: ServiceModel): number | null {
  return m.iWeight >= I_READY ? interferenceOf(m.iSum / m.iWeight) : null;
}

/** Whether the inner tier marked a load inference alone barely serves (saturatedMs) within the last `ms`. */
export function saturatedWithin(s: GpucoloState, now: number, ms: number): boolean {
  return s.saturatedMs != null && now - s.saturatedMs < ms;
}

/** The model can set a duty: s0 and I identified, kappa calibrated a few times. */
export function modelReady(m: ServiceModel): boolean {
  return m.s0Ms !== null && interferenceNow(m) !== null && m.kappaN >= 3;
}

/** Weight of each new gap in s0Var. */
const S0_VAR_GAIN = 0.05;

/** One reading of s0 (ms) averaged in with `gain` (in logs); the gap it stood from s0 before goes into s0Var. */
export function readS0(m: ServiceModel, reading: number, gain: number): void {
  if (m.s0Ms === null) { m.s0Ms = reading; return; }
  const gap = Math.log(reading) - Math.log(m.s0Ms);
  m.s0Var = ewma(m.s0Var, gap * gap, S0_VAR_GAIN);
  m.s0Ms = Math.exp(ewma(Math.log(m.s0Ms), Math.log(reading), gain));
}

/** Standard deviations of one s0 reading an interference must stand above to be read as the share's. */
const READABLE_Z = 2;

/** The interference below which a reading of it is s0's error, not the share's (0 before s0 has been read twice). */
export function readableAbove(m: ServiceModel | undefined): number {
  return m?.s0Var == null ? 0 : Math.expm1(READABLE_Z * Math.sqrt(m.s0Var));
}

/** Noise of the log 1 s tail (INITIAL_NOISE until measured). */
export function noiseOf(m: ServiceModel): number {
  return m.noiseVar === null || m.kappaN < NOISE_READY ? INITIAL_NOISE : Math.max(MIN_NOISE, Math.sqrt(m.noiseVar));
}

/**
 * A load inference alone cannot serve within a second (utilisation of its alone batch time at or above
 * OVERLOAD): such a second says nothing of how the model reads inference alone.
 */
export function overloaded(rateRps: number, s0Ms: number, closed: boolean): boolean {
  return !closed && (rateRps * s0Ms) / 1000 >= OVERLOAD;
}

/**
 * Misses a service may add to inference alone's, as a share of seconds: floorSharePct of the floor's slack,
 * min(0.99, alone - 0.005), given alone's own miss share `aloneMiss`.
 */
export function allowedExtra(o: GpucoloOptions, aloneMiss: number, part = o.floorSharePct / 100): number {
  return part * Math.max(0.01 - aloneMiss, 0.005);
}

/** The metric a single 200 ms window is read at for the fast path: p95 stands for the p99 of one fifth of a second. */
export function fastMetric(o: GpucoloOptions): LatencyMetric {
  return o.metric === 'p99' && o.estimatorWindows >= 5 ? 'p95' : o.metric;
}

/** Memory of the fast-window counts, in windows (about 5 minutes of 200 ms windows). */
const FAST_MEMORY = 1500;
/** A second at a duty of at most this is an awake second for the fast-window counts. */
export const REFLEX_AWAKE_DUTY = 0.5;
/** Windows each side needs before the counts can excuse a miss. */
const REFLEX_EVIDENCE = 25;
/** Rate of fast windows past the SLO with training out of the way below which every miss is training's, and the
 * fewest such windows (decayed count) that show inference has misses of its own at all. */
const REFLEX_ALONE_RATE = 0.01;
const REFLEX_ALONE_MISSES = 5;
/** Training's part of the awake misses (1 - cap rate / awake rate) below which the cap is not sent. */
const REFLEX_TRAINING_PART = 0.5;

/** Counts one fast window into the model's cap or awake counts (`regime`), decaying both. */
export function countFast(sm: ServiceModel, regime: 'cap' | 'awake' | null, over: boolean): void {
  const d = Math.exp(-1 / FAST_MEMORY);
  sm.capWindows *= d; sm.capOver *= d; sm.awakeWindows *= d; sm.awakeOver *= d;
  if (regime === 'cap') { sm.capWindows++; if (over) sm.capOver++; }
  if (regime === 'awake') { sm.awakeWindows++; if (over) sm.awakeOver++; }
}

/**
 * Whether a fast window past the SLO is one inference would have had with training out of the way: the windows
 * at the cap miss often enough (REFLEX_ALONE_RATE), and awake windows at most 1 / (1 - REFLEX_TRAINING_PART) times
 * as often. Then the cap would cost training its awake time and leave the misses where they are (a host's stalls,
 * inference's own spikes); the model and the price, which count a miss as training's only by the part it adds,
 * decide the duty instead. Only read away from saturation: there a miss is a queue, which any load training adds
 * makes worse, whatever the counts say.
 */
export function missExcused(sm: ServiceModel): boolean {
  const part = trainingPart(sm);
  return part !== null && part <= REFLEX_TRAINING_PART;
}

/**
 * Training's part of the fast windows' misses, as the counts measure it: 1 - (cap rate / awake rate); null until
 * both sides have REFLEX_EVIDENCE windows and inference has shown misses of its own (REFLEX_ALONE_MISSES windows
 * past the SLO at the cap, at a rate of at least REFLEX_ALONE_RATE): where it has none, every miss is training's.
 */
export function trainingPart(sm: ServiceModel): number | null {
  if (sm.capWindows < REFLEX_EVIDENCE || sm.awakeWindows < REFLEX_EVIDENCE || sm.capOver < REFLEX_ALONE_MISSES) return null;
  const cap = sm.capOver / sm.capWindows, awake = sm.awakeOver / sm.awakeWindows;
  if (cap < REFLEX_ALONE_RATE) return null;
  return awake > 0 ? clamp(1 - cap / awake, 0, 1) : 0;
}
