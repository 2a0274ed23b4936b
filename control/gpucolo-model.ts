/**
 * gpucolo's plant model: a queue whose server is slowed while training is awake. No constant in it belongs to a
 * GPU: every parameter is identified online from the latency windows (gpucolo-inner.ts) and the training
 * observations (gpucolo-outer.ts).
 *
 * The server. Alone, one inference batch takes s0 on average. While training is awake it runs at 1/(1 + I),
 * I the interference of the training share. Duty pacing keeps training awake (1 - duty) of every period, so on
 * average the server runs at 1 - (1 - duty) * xi of its alone speed, xi = I / (1 + I) (the fraction of its speed
 * awake training takes):
 *     f = 1 / (1 - (1 - duty) * xi)          mean slowdown; f = 1 + I without sleep
 * Inference's p99 is then three terms:
 *     s0                                      the batch itself
 *   + block = min(s0 * I, s0 * (f - 1) + awake * xi)
 *                                             what a batch that meets an awake phase loses: its whole
 *                                             slowdown s0 * I, but never more than one awake phase (awake =
 *                                             (1 - duty) * period) takes from it beyond the average slowdown.
 *                                             Short batches meet awake phases whole (s0 * I); long ones see the
 *                                             average (s0 * (f - 1)). This is why sleep moves a short batch's
 *                                             tail only near the duty cap, and why at a large I (training all
 *                                             but stops inference while awake) the tail is set by the awake
 *                                             phase's length, so a large share with much sleep can beat a small
 *                                             share without sleep.
 *   + wait99 = S / (2 (1 - u)) * ln(100 u)    the p99 wait of an M/D/1-like queue at utilisation u = rate * S,
 *                                             S = s0 * f: convex, unbounded as the load nears capacity
 *                                             (exponential tail P(W > t) = u exp(-2 (1 - u) t / S)).
 * A client that sends its next request when the last returns (closed loop) never queues: no wait term.
 *
 * The model is structural, not exact: the controller multiplies it by a calibration kappa (measured / model,
 * identified online at the operating point), which also absorbs heavy co-located tails and service jitter.
 * Everything here is a pure function of numbers.
 */
import { clamp } from './common.ts';

/** One plant reading the model needs (all identified online). */
export interface PlantPoint {
  /** Mean batch time alone, ms. */
  s0Ms: number;
  /** Interference I of the training share in force (or being evaluated). */
  interference: number;
  duty: number;
  periodMs: number;
  /** Offered batches per second. */
  rateRps: number;
  /** Arrivals wait for the previous reply (no queue forms). */
  closed: boolean;
}

/**
 * A plant point at a duty (and a load), built field by field: these run for every duty of the grid every period,
 * and a spread that adds a key its source lacks makes an object V8's young-generation collector keeps, the
 * round trip's p99 in GC pauses (bench fleet).
 */
export function atDuty(p: Omit<PlantPoint, 'duty'>, duty: number): PlantPoint {
  return { s0Ms: p.s0Ms, interference: p.interference, duty, periodMs: p.periodMs, rateRps: p.rateRps, closed: p.closed };
}

/** The plant (without a duty) at another load; see atDuty. */
export function atRate(p: Omit<PlantPoint, 'duty' | 'rateRps'>, rateRps: number): Omit<PlantPoint, 'duty'> {
  return { s0Ms: p.s0Ms, interference: p.interference, periodMs: p.periodMs, rateRps, closed: p.closed };
}

/** xi = I / (1 + I): the fraction of inference's speed awake training takes. */
export function xiOf(interference: number): number {
  return interference > 0 ? interference / (1 + interference) : 0;
}

/** I from xi. */
export function interferenceOf(xi: number): number {
  const x = clamp(xi, 0, 0.995);
  return x / (1 - x);
}

/** Mean slowdown of inference under pacing: 1 / (1 - (1 - duty) * xi). */
export function slowdown(interference: number, duty: number): number {
  return 1 / (1 - (1 - clamp(duty, 0, 1)) * xiOf(interference));
}

/**
 * The server's busy fraction in the model: `rateRps` batches of `s0Ms` each, slowed by awake training at `duty`.
 * A closed loop's is 0: its client waits for each reply, so no queue builds whatever the service time.
 */
export function utilisation(rateRps: number, s0Ms: number, interference: number, duty: number, closed: boolean): number {
  return closed ? 0 : (rateRps * s0Ms * slowdown(interference, duty)) / 1000;
}

/** The model's p99 (ms); Infinity when the load is at or past capacity. */
export function tailMs(p: PlantPoint): number {
  tailInto(p, tailSlot, 0);
  return tailSlot[0]!;
}
/** tailMs's slot (read back at once, never kept). */
const tailSlot = new Float64Array(1);

/**
 * tailMs, written into out[k]: nothing returned, so that a call V8 does not inline boxes no number (missRow runs
 * it for every duty of the grid, every window and once a second per load bin).
 */
function tailInto(p: PlantPoint, out: Float64Array, k: number): void {
  const i = Math.max(0, p.interference);
  const xi = xiOf(i);
  const f = slowdown(i, p.duty);
  const awakeMs = (1 - clamp(p.duty, 0, 1)) * p.periodMs;
  const block = p.duty <= 0 ? p.s0Ms * i : Math.min(p.s0Ms * i, p.s0Ms * (f - 1) + awakeMs * xi);
  if (p.closed) { out[k] = p.s0Ms + block; return; }
  const s = p.s0Ms * f;
  const u = (Math.max(0, p.rateRps) * s) / 1000;
  if (u >= 0.999) { out[k] = Infinity; return; }
  const wait = u > 0.01 ? Math.max(0, (s / (2 * (1 - u))) * Math.log(100 * u)) : 0;
  out[k] = p.s0Ms + block + wait;
}

/**
 * Smallest duty in [0, maxDuty] at which kappa * tailMs <= targetMs (tailMs falls as the duty rises), by
 * bisection. feasible = false when even maxDuty misses the target (the duty returned is then maxDuty).
 */
export function dutyFor(p: Omit<PlantPoint, 'duty'>, kappa: number, targetMs: number, maxDuty: number): { duty: number; feasible: boolean } {
  const at = (d: number) => kappa * tailMs(atDuty(p, d));
  if (at(0) <= targetMs) return { duty: 0, feasible: true };
  if (!(at(maxDuty) <= targetMs)) return { duty: maxDuty, feasible: false };
  let lo = 0, hi = maxDuty;
  for (let k = 0; k < 24; k++) {
    const mid = (lo + hi) / 2;
    if (at(mid) <= targetMs) hi = mid;
    else lo = mid;
  }
  return { duty: hi, feasible: true };
}

/**
 * Mean batch time (ms) behind a measured mean latency at an arrival rate: the Pollaczek-Khinchine mean of an
 * M/D/1 queue, W = S + rate S^2 / (2 (1 - rate S)), solved for S. A closed loop never queues: S = W.
 */
export function serviceFromMean(meanMs: number, rateRps: number, closed: boolean): number {
  if (!(meanMs > 0)) return 0;
  if (closed || !(rateRps > 0)) return meanMs;
  const a = (meanMs * rateRps) / 1000;
  const u = 1 + a - Math.sqrt((1 + a) * (1 + a) - 2 * a);
  return u > 0 ? (u * 1000) / rateRps : meanMs;
}

/**
 * A client that waits for its reply before it sends the next request: about one request in the system
 * (Little: rate * mean latency ~ 1) with a tail no wider than the batches' own spread. An open queue holding
 * one request on average waits a good share of its requests, so its p99 is far above its median.
 */
export function looksClosed(rateRps: number, meanMs: number, p50Ms: number, p99Ms: number): boolean {
  const inSystem = (rateRps * meanMs) / 1000;
  return inSystem > 0.75 && inSystem < 1.3 && p50Ms > 0 && p99Ms / p50Ms < 1.6;
}

/** EWMA with a first sample taken as is. */
export function ewma(prev: number | null | undefined, sample: number, alpha: number): number {
  return prev === null || prev === undefined ? sample : prev + alpha * (sample - prev);
}

// Acklam's coefficients for normalQuantile, built once (an array literal in the function is a new array per call).
const NQ_A = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239] as const;
const NQ_B = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572] as const;
const NQ_C = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783] as const;
const NQ_D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416] as const;

/** Standard normal quantile (Acklam's rational approximation; |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const q = clamp(p, 1e-12, 1 - 1e-12);
  const a = NQ_A, b = NQ_B, c = NQ_C, d = NQ_D;
  const lo = 0.02425;
  if (q < lo) {
    const r = Math.sqrt(-2 * Math.log(q));
    return (((((c[0]! * r + c[1]!) * r + c[2]!) * r + c[3]!) * r + c[4]!) * r + c[5]!) / ((((d[0]! * r + d[1]!) * r + d[2]!) * r + d[3]!) * r + 1);
  }
  if (q > 1 - lo) return -normalQuantile(1 - q);
  const r = q - 0.5;
  const s = r * r;
  return ((((((a[0]! * s + a[1]!) * s + a[2]!) * s + a[3]!) * s + a[4]!) * s + a[5]!) * r) / (((((b[0]! * s + b[1]!) * s + b[2]!) * s + b[3]!) * s + b[4]!) * s + 1);
}

/**
 * Slope of y on x by least squares with weights (log-log fits of I and training speed against the share).
 * null with fewer than two distinct x.
 */
export function weightedSlope(points: readonly { x: number; y: number; w: number }[]): number | null {
  let sw = 0, sx = 0, sy = 0;
  for (const p of points) { sw += p.w; sx += p.w * p.x; sy += p.w * p.y; }
  if (!(sw > 0)) return null;
  const mx = sx / sw, my = sy / sw;
  let sxx = 0, sxy = 0;
  for (const p of points) { sxx += p.w * (p.x - mx) ** 2; sxy += p.w * (p.x - mx) * (p.y - my); }
  return sxx > 1e-9 * sw ? sxy / sxx : null;
}

/**
 * Mean stretch of one batch under pacing (no queueing). A short batch (s0 << period) that starts inside an awake
 * phase with r of it left loses min(s0 * I, r * xi): its whole slowdown, or what the rest of the phase takes from
 * it; r is uniform over the phase (awake = (1 - duty) * period), so on average it loses
 *     s0 * I * (1 - s0 (1 + I) / (2 awake))    when the batch fits in the phase slowed down,
 *     awake * xi / 2                           when it does not;
 * and (1 - duty) of the batches start awake. A long batch spans many phases and sees the average speed: f.
 * Blended by s0 / period.
 */
export function meanSlowdown(interference: number, duty: number, s0Ms: number, periodMs: number): number {
  const d = clamp(duty, 0, 1);
  const w = periodMs > 0 ? clamp(s0Ms / periodMs, 0, 1) : 1;
  const awakeMs = (1 - d) * periodMs;
  let lost: number;
  if (d <= 0 || !(s0Ms > 0)) lost = s0Ms * interference;
  else if (s0Ms * (1 + interference) <= awakeMs) lost = s0Ms * interference * (1 - (s0Ms * (1 + interference)) / (2 * awakeMs));
  else lost = (awakeMs * xiOf(interference)) / 2;
  const short = s0Ms > 0 ? 1 + ((1 - d) * lost) / s0Ms : 1;
  return (1 - w) * short + w * slowdown(interference, d);
}

/** The interference I whose meanSlowdown is `stretch` (bisection; 0 when there is no stretch). */
export function interferenceFromStretch(stretch: number, duty: number, s0Ms: number, periodMs: number): number {
  if (!(stretch > 1)) return 0;
  let lo = 0, hi = 1;
  while (meanSlowdown(hi, duty, s0Ms, periodMs) < stretch && hi < 1e3) hi *= 2;
  for (let k = 0; k < 40; k++) {
    const mid = (lo + hi) / 2;
    if (meanSlowdown(mid, duty, s0Ms, periodMs) < stretch) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The interference I at which the model's tail is `tailMs` (bisection; 0 below the tail with no training). */
export function interferenceFromTail(measuredMs: number, p: Omit<PlantPoint, 'interference'>): number {
  // One point, its interference moved (not a copy per reading), its tail read into a slot (tailInto).
  const at: PlantPoint = { s0Ms: p.s0Ms, interference: 0, duty: p.duty, periodMs: p.periodMs, rateRps: p.rateRps, closed: p.closed };
  const tail = tailSlot;
  tailInto(at, tail, 0);
  if (!(tail[0]! < measuredMs)) return 0;
  let lo = 0, hi = 1;
  for (;;) {
    at.interference = hi;
    tailInto(at, tail, 0);
    if (!(tail[0]! < measuredMs && hi < 1e3)) break;
    hi *= 2;
  }
  for (let k = 0; k < 40; k++) {
    const mid = (lo + hi) / 2;
    at.interference = mid;
    tailInto(at, tail, 0);
    if (tail[0]! < measuredMs) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Log bins of the load forecast: bin k holds rates in [RATE_BIN_BASE * r^k, RATE_BIN_BASE * r^(k+1)), r = RATE_BIN_RATIO. */
export const RATE_BIN_RATIO = 1.08;
const RATE_BIN_BASE = 0.01;

/** Bin of a rate (rps). */
export function rateBin(rateRps: number): number {
  return Math.max(0, Math.floor(Math.log(Math.max(rateRps, RATE_BIN_BASE) / RATE_BIN_BASE) / Math.log(RATE_BIN_RATIO)));
}

/** The rate a bin stands for: its upper edge (a cautious reading of the load it holds). */
export function binRate(bin: number): number {
  return RATE_BIN_BASE * RATE_BIN_RATIO ** (bin + 1);
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 on erf; |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Chance that a 1 s tail whose log is normal around ln(levelMs) with deviation sigma lands above the SLO. */
export function missChance(levelMs: number, sloMs: number, sigma: number): number {
  if (!Number.isFinite(levelMs)) return 1;
  if (!(levelMs > 0)) return 0;
  return 1 - normalCdf(Math.log(sloMs / levelMs) / Math.max(sigma, 1e-3));
}

/** The duties a plan chooses among: 0, step, 2 step, ... and maxDuty itself. */
export function dutyGrid(maxDuty: number, step = 0.05): readonly number[] {
  let byMax = GRIDS.get(step);
  if (!byMax) GRIDS.set(step, (byMax = new Map()));
  let out = byMax.get(maxDuty);
  if (!out) {
    const g: number[] = [];
    for (let k = 0; k * step < maxDuty - 1e-9; k++) g.push(k * step);
    g.push(maxDuty);
    out = Object.freeze(g);
    byMax.set(maxDuty, out);
  }
  return out;
}
/**
 * Grids built so far, by step then maxDuty (the inner tier asks for its grid every window: keyed by the numbers
 * themselves, no key string built per call).
 */
const GRIDS = new Map<number, Map<number, readonly number[]>>();

/**
 * Chance of a miss at each duty of the grid, at one load: a new array, or written into `out` (at least as long as
 * the grid; what lies past it is left as it was), which is returned.
 */
export function missRow(p: Omit<PlantPoint, 'duty'>, kappa: number, sloMs: number, sigma: number, grid: readonly number[]): number[];
export function missRow(p: Omit<PlantPoint, 'duty'>, kappa: number, sloMs: number, sigma: number, grid: readonly number[], out: Float64Array): Float64Array;
export function missRow(p: Omit<PlantPoint, 'duty'>, kappa: number, sloMs: number, sigma: number, grid: readonly number[], out?: Float64Array): number[] | Float64Array {
  // One point moved along the grid, not one per duty: this runs every window (and once a second per load bin).
  const at = atDuty(p, 0);
  if (out) return missRowOn(at, kappa, sloMs, sigma, grid, out);
  const row: number[] = [];
  for (let k = 0; k < grid.length; k++) {
    at.duty = grid[k]!;
    row.push(missChance(kappa * tailMs(at), sloMs, sigma));
  }
  return row;
}

/**
 * missRow into `out` along the grid on the caller's own point `at` (its duty moved, left at the grid's last):
 * for a caller that reads many loads on one point it moves itself (gpucolo-service.ts forecastMix).
 */
export function missRowOn(at: PlantPoint, kappa: number, sloMs: number, sigma: number, grid: readonly number[], out: Float64Array): Float64Array {
  for (let k = 0; k < grid.length; k++) {
    at.duty = grid[k]!;
    tailInto(at, out, k);
    out[k] = missChance(kappa * out[k]!, sloMs, sigma);
  }
  return out;
}

/**
 * A scratch row for `grid` (missRow's `out`) from `held`, or a longer one in its place: for rows read and
 * dropped within one step (none kept in a state), so that the per-window rows allocate nothing.
 */
export function scratchRow(held: Float64Array, grid: readonly number[]): Float64Array {
  return held.length >= grid.length ? held : new Float64Array(Math.max(grid.length, 2 * held.length));
}

/**
 * Chance of a miss in the next second: the load seen now (`row`), blended with the forecast (`mix`) as far as the
 * last second does not predict the next, and never below what the load seen now gives on its own (the forecast
 * adds caution for what the next second may bring; it does not discount a load that is here).
 */
export function missOf(row: number, mix: number, surprise: number): number {
  return Math.max(row, (1 - surprise) * row + surprise * mix);
}

/**
 * The duty the inner tier buys at a load: the grid index that maximises (1 - duty) - price * P(miss), where
 * P(miss) = missOf(row, mix, surprise): `row` the chances at the load it sees, `mix` the chances averaged over the
 * forecast (the next second's load, as far as the last one does not predict it).
 */
export function pickDuty(grid: readonly number[], row: ArrayLike<number>, mix: ArrayLike<number>, surprise: number, price: number): number {
  let best = 0, bestValue = -Infinity;
  for (let k = 0; k < grid.length; k++) {
    const miss = missOf(row[k]!, mix[k]!, surprise);
    const value = 1 - grid[k]! - price * miss;
    if (value > bestValue + 1e-12) { best = k; bestValue = value; }
  }
  return best;
}

/**
 * How little the last second's load says about the next: 1 - rho^2 of the log 1 s rates (rho their lag-one
 * correlation), 0 for a steady or slowly moving load, near 1 for independent bursts. A Poisson count of n
 * arrivals adds about 1/n of variance to its log that no load carries: that part is taken out first, so a flat
 * load (whose seconds differ only by counting) reads as steady.
 */
export function surpriseOf(variance: number | null, covariance: number | null, meanRatePerS = Infinity): number {
  if (variance === null || covariance === null) return 0;
  const rho = loadCorrelation(variance, covariance, meanRatePerS, 0.01);
  return rho === null ? 0 : 1 - rho * rho;
}

/**
 * The lag-one correlation of the load's log 1 s rates, in [0, 1]: their covariance over their variance with the
 * Poisson counting's part (about 1 / rate) taken out; null where what is left of the variance is `minLoad` or less.
 */
export function loadCorrelation(variance: number, covariance: number, meanRatePerS: number, minLoad: number): number | null {
  const load = variance - 1 / Math.max(1, meanRatePerS);
  return load > minLoad ? clamp(covariance / load, 0, 1) : null;
}
