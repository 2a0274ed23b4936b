/** Options and state of the `gpucolo` policy (split out so inner and outer tiers can share them). */
import type { RateTracker } from './feedforward.ts';
import { MAX_DUTY, type LatencyWindow } from './types.ts';
import type { LatencyMetric } from './window.ts';

/**
 * Every option is about the controller, none about a GPU: the plant (alone batch time, interference of a share
 * and how it grows with the share, training speed against the share, restart cost, noise) is identified online
 * (gpucolo-model.ts, gpucolo-inner.ts). The exponent priors (gammaPriorLow/High, betaPriorLow/High) only stand in until two
 * shares have been measured, and a move is judged at the end of the beta range least favourable to it.
 */
export interface GpucoloOptions {
  /** Controlled latency statistic of each service. */
  metric: LatencyMetric;
  innerPeriodMs: number;
  /**
   * Inner windows merged into the controlled estimate (the current one included): 5 x 200 ms = the 1 s windows
   * the SLO is scored on.
   */
  estimatorWindows: number;
  outerPeriodMs: number;
  /** Duty-cycle period handed to the training hook: training sleeps duty * dutyPeriodMs every dutyPeriodMs. */
  dutyPeriodMs: number;
  initialSharePct: number;
  /**
   * Duty the training job starts with, before the first window. The first inner period takes the duty to the cap
   * whatever this is, until inference alone has been read; the model relaxes it from there.
   */
  initialDuty: number;
  /**
   * Largest duty, at most MAX_DUTY (0.95): every pacing path (signal pacer, cooperative hook, simulated GPU) caps
   * a duty there. The hook's lease would end even a full pause if the runner died, but 0.95 leaves every
   * training process making progress, so the controller never commands more than the hardware paths do.
   */
  maxDuty: number;
  minSharePct: number;
  /**
   * While the interference of the share is being read (no model yet), the duty walks down as long as the tail stays
   * marginPct under the SLO.
   */
  marginPct: number;
  /**
   * Part of the attainment floor's slack the controller plans to use, percent. The floor is min(0.99, alone -
   * 0.005); a service may miss what inference alone would miss at its load plus this part of the rest (the other
   * part is for transients and model error). The price of a miss adapts until the misses fit.
   */
  floorSharePct: number;
  /** Largest duty decrease per inner period (increases are immediate: the SLO comes first). */
  maxStepDown: number;
  /** Weight of one 1 s estimate in the model calibration when it reads more than three noise deviations above the model. */
  calibrationGainFast: number;
  /** Weight of one 1 s estimate in the model calibration otherwise (noise averages out over about 1/this periods). */
  calibrationGainSlow: number;
  /** Budget of MPS changes (each restarts training): at most this many in any hour, and since the start. */
  restartsPerHour: number;
  /** Memory of the load forecast (s), and how long a new share is expected to hold when its gain is weighed. */
  horizonS: number;
  /**
   * Move the share for gain only when the predicted training gain over horizonS, after the restart's cost, is at
   * least this percent times one more than the restarts of the last hour.
   */
  minGainPct: number;
  /** Time at a share before the outer tier may move it again (s): the new share is measured first. */
  settleS: number;
  /** Restart cost assumed until one restart has been measured (ms): the paper's upper bound. */
  restartPriorMs: number;
  /**
   * Range of the exponent of interference against share, I ~ share^gamma, assumed until two shares have been
   * measured (the calibrated RTX 3090 reads 1.6; steeper plants reach past 2); a move is judged at the end least
   * favourable to it: a larger share at the high end, a smaller one at the low end.
   */
  gammaPriorLow: number;
  gammaPriorHigh: number;
  /**
   * Range of the exponent of training speed against share assumed until two shares have been measured (public
   * measurements span about 0.5 to 0.95); a move is judged at the end least favourable to it.
   */
  betaPriorLow: number;
  betaPriorHigh: number;
}

export const GPUCOLO_DEFAULTS: Readonly<GpucoloOptions> = Object.freeze({
  metric: 'p99',
  innerPeriodMs: 200,
  estimatorWindows: 5,
  outerPeriodMs: 5_000,
  dutyPeriodMs: 50,
  initialSharePct: 15,
  initialDuty: 0.5,
  maxDuty: MAX_DUTY,
  minSharePct: 5,
  marginPct: 10,
  floorSharePct: 30,
  maxStepDown: 0.15,
  calibrationGainFast: 0.3,
  calibrationGainSlow: 0.05,
  restartsPerHour: 12,
  horizonS: 600,
  minGainPct: 10,
  settleS: 60,
  restartPriorMs: 15_000,
  gammaPriorLow: 1,
  gammaPriorHigh: 2.5,
  betaPriorLow: 0.5,
  betaPriorHigh: 1,
});

/** What the controller has identified about one inference service (plain data). */
export interface ServiceModel {
  /** Mean batch time alone (ms), measured while training is out of the way; null until then. */
  s0Ms: number | null;
  /** EWMA of the squared log gap between an s0 reading and s0 before it: how far one reading strays; null before the second. */
  s0Var: number | null;
  /** Interference of the share in force, as xi = I / (1 + I): weighted sum of per-window readings and its weight. */
  iSum: number;
  iWeight: number;
  /** ln(measured / model) of the controlled tail at the operating point. */
  lnKappa: number;
  /** Calibration updates so far. */
  kappaN: number;
  /** The same calibration averaged over about 20 s: what the noise is read against. */
  lnKappaSlow: number | null;
  /** EWMA of the squared residual of the log 1 s tail around the slow calibration; null until measured. */
  noiseVar: number | null;
  /** Evidence (EWMA, 0..1) that the client waits for each reply (closed loop); null before the first reading. */
  closed: number | null;
  /**
   * Load forecast: log-binned histogram of 1 s arrival rates, weights decaying with horizonS; bins in ascending
   * order (every reader sums in that order). Two arrays, not a record keyed by bin: bins are integers near 100,
   * which a record keeps as array elements sized to the largest, rebuilt every window.
   */
  rates: RateHistogram;
  /** Price of a missed 1 s window, in awake time at the share in force (the floor's dual variable). */
  price: number;
  /** Its log averaged over horizonS: what the outer tier plans with (a share is not replanned on every miss). */
  lnPriceSlow: number | null;
  /** 1 s windows scored and missed so far. */
  scored: number;
  missed: number;
  /** Highest 99th-percentile bin the forecast has reached, and since when it holds. */
  peakBin: number;
  peakSinceMs: number | null;
  /** EWMA mean, variance and lag-one covariance of the log 1 s arrival rate, and the last one (predictability). */
  lnRateMean: number | null;
  lnRateVar: number | null;
  lnRateCov: number | null;
  lastLnRate: number | null;
  /** The model's chance that inference alone misses a second, averaged (EWMA) over the recent seconds. */
  aloneMiss: number | null;
  /** Misses counted as training's (EWMA over the same seconds): what the SLO books say training costs now. */
  oursMiss: number | null;
  /** Mean and variance of ln(alone's tail / calibrated model) over seconds with training out of the way. */
  aloneBias: number | null;
  aloneVar: number | null;
  aloneN: number;
  /** Chance of a miss at each duty of the grid averaged over the load forecast, as last computed (once a second). */
  mix: number[] | null;
  /**
   * The last misses charged to training (at most gpucolo-service.ts CHARGED_MEMORY): alone's level and the SLO of
   * that second, the model's chance of a miss next to training then, and the part charged. Every scored second they
   * are charged again with what is known of inference alone now (gpucolo-service.ts rechargeMisses).
   */
  charged: ChargedMiss[];
  /** Seconds with training out of the way (decayed count), those past the SLO, and the model's chances of a miss
   * in them summed (aloneChance): whether inference alone misses more often than its log-normal model says. */
  aloneSecs: number;
  aloneSecMisses: number;
  aloneSecChance: number;
  /** The same misses and chances per load (rate bin), not decayed: alone's excess at each load, for the books. */
  aloneBins: AloneBins;
  /** Seconds next to awake training (decayed counts): training's part of their misses, and the part of their chance
   * the calibrated model gives training, summed: whether training's misses come more often than the model says. */
  oursSecMisses: number;
  oursSecChance: number;
  /**
   * Fast windows past the SLO, counted apart (decayed counts, gpucolo-service.ts FAST_MEMORY) while training is out
   * of the way (restarting, or the last second at the duty cap) and while it is awake (the last second at a duty
   * of at most REFLEX_AWAKE_DUTY): whether sending the duty to the cap at a miss removes misses, or only training.
   */
  capWindows: number;
  capOver: number;
  awakeWindows: number;
  awakeOver: number;
}

/** A histogram over rate bins: `bins` ascending, `weights[i]` the weight of `bins[i]`. Plain data (snapshots). */
export interface RateHistogram {
  bins: readonly number[];
  weights: readonly number[];
}

/** Per rate bin (as RateHistogram, for the same reason): misses seen alone and the model's summed chances of them. */
export interface AloneBins {
  bins: readonly number[];
  misses: readonly number[];
  chance: readonly number[];
}

/** One miss charged to training in the floor's books (ServiceModel.charged). */
export interface ChargedMiss {
  aloneMs: number;
  sloMs: number;
  oursChance: number;
  share: number;
  /** The load's rate bin (gpucolo-model.ts rateBin). */
  bin: number;
}

/** What was measured at one MPS share (the outer tier fits the exponents across these). */
export interface ShareRecord {
  pct: number;
  /** Interference I at this share (mean of the service driving the decisions) and its weight. */
  interference: number;
  iWeight: number;
  /**
   * s0 (ms) I was read against (0: not known). I is a stretch over s0, so what was measured is the batch time with
   * training awake, s0 (1 + I): read against a later s0 (re-read while training restarts), I is that over it.
   */
  s0Ms: number;
  /** Training iterations per second per unit of awake time, and its weight (seconds observed). */
  trainPerAwake: number;
  tWeight: number;
}

/** Plain data, so an actor can persist it and a simulator can copy it. */
export interface GpucoloState {
  duty: number;
  /** The services' windows of the last estimatorWindows - 1 inner periods (oldest first): the 1 s estimator. */
  recent: LatencyWindow[][];
  /** Duty in force during each of those windows. */
  recentDuty: number[];
  /** Whether training was active in the windows held in `recent` (the estimator restarts when it flips). */
  recentActive: boolean;
  /** Inner periods since the estimator restarted (every estimatorWindows-th closes a scored second). */
  steps: number;
  /** Since when training has been running without a break; null while it is not. */
  activeSinceMs: number | null;
  /** Per-service arrival-rate trackers (feedforward.ts): the rate level, with fast detection of rises. */
  rateTrackers: Record<string, RateTracker>;
  models: Record<string, ServiceModel>;
  shares: ShareRecord[];
  /** Duty averaged over the last few seconds (the window training speed is read over). */
  dutyAvg: number;
  /** Awake time (1 - duty) summed over the inner periods with training running since the last MPS change. */
  awakeSum: number;
  awakeN: number;
  startMs: number | null;
  /** Times of the MPS changes in the last hour, and the count since the start. */
  restartTimesMs: number[];
  restarts: number;
  lastMpsChangeMs: number | null;
  /** Set at an MPS change until training runs again: the restart being measured. */
  restartSinceMs: number | null;
  /** Measured restart cost (ms, EWMA); null until one restart has been seen through. */
  restartMs: number | null;
  /** Until when a declared load rise keeps misses priced higher; null when none is open. */
  alertUntilMs: number | null;
  /**
   * Training the outer tier stopped (gpucolo-outer.ts stopAtCap): when, and the arrival rate then (rps, all
   * services); null while training runs. Resuming it is a restart, counted as one. Absent in a state saved before.
   */
  stopped?: { atMs: number; loadRps: number } | null;
  /**
   * Last inner period in which a service's load was one inference alone barely serves (gpucolo-inner.ts: the duty
   * held at the cap until an outer period without one, those periods kept out of the measured awake time); null
   * before any. The outer tier makes no move for gain within settleS of it. Absent in a state saved before.
   */
  saturatedMs?: number | null;
}

/** Defaults overlaid with the caller's options; throws on inconsistent values. */
export function resolveGpucoloOptions(o: Partial<GpucoloOptions> = {}): GpucoloOptions {
  const r: GpucoloOptions = { ...GPUCOLO_DEFAULTS, ...o };
  if (!(r.maxDuty > 0 && r.maxDuty <= MAX_DUTY)) throw new RangeError(`gpucolo: maxDuty must be in (0, ${MAX_DUTY}] (the duty cap of every pacing path)`);
  if (!(r.minSharePct >= 1 && r.minSharePct <= 100)) throw new RangeError('gpucolo: minSharePct must be in [1, 100]');
  if (!(r.initialSharePct >= r.minSharePct && r.initialSharePct <= 100)) throw new RangeError('gpucolo: initialSharePct must be in [minSharePct, 100]');
  if (!(r.initialDuty >= 0 && r.initialDuty <= r.maxDuty)) throw new RangeError('gpucolo: initialDuty must be in [0, maxDuty]');
  if (!(r.marginPct >= 0 && r.marginPct < 100)) throw new RangeError('gpucolo: marginPct must be in [0, 100)');
  if (!(r.floorSharePct > 0 && r.floorSharePct <= 100)) throw new RangeError('gpucolo: floorSharePct must be in (0, 100]');
  if (!(r.innerPeriodMs > 0 && r.outerPeriodMs >= r.innerPeriodMs)) {
    throw new RangeError('gpucolo: need 0 < innerPeriodMs <= outerPeriodMs');
  }
  if (!(r.maxStepDown > 0)) throw new RangeError('gpucolo: maxStepDown must be > 0');
  if (!(r.restartsPerHour >= 0)) throw new RangeError('gpucolo: restartsPerHour must be >= 0');
  if (!(r.horizonS > 0)) throw new RangeError('gpucolo: horizonS must be > 0');
  if (!(r.gammaPriorLow > 0 && r.gammaPriorLow <= r.gammaPriorHigh)) throw new RangeError('gpucolo: need 0 < gammaPriorLow <= gammaPriorHigh');
  if (!(r.betaPriorLow > 0 && r.betaPriorLow <= r.betaPriorHigh)) throw new RangeError('gpucolo: need 0 < betaPriorLow <= betaPriorHigh');
  return r;
}
