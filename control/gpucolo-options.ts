/** Options and state of the `gpucolo` policy (split out so inner and outer tiers can share them). */
import type { RateTracker } from './feedforward.ts';
import type { LatencyWindow } from './types.ts';
import type { LatencyMetric } from './window.ts';

export interface GpucoloOptions {
  /** Controlled latency statistic of each service. */
  metric: LatencyMetric;
  /** Target = SLO * (1 - marginPct/100): headroom for noise and the one-period reaction lag. */
  marginPct: number;
  innerPeriodMs: number;
  /**
   * Inner windows merged into the controlled estimate (the current one included): 5 x 200 ms = the 1 s windows
   * the SLO is scored on. 1 = the last window alone.
   */
  estimatorWindows: number;
  /** React at once (violation gain) when the current inner window alone is past its SLO. */
  fastViolation: boolean;
  outerPeriodMs: number;
  /** Duty-cycle period handed to the training hook: training sleeps duty * dutyPeriodMs every dutyPeriodMs. */
  dutyPeriodMs: number;
  initialDuty: number;
  initialSharePct: number;
  /** Largest duty; 1 lets the inner tier pause training outright when inference alone barely meets the SLO (the hook's lease still ends any pause if the runner dies). */
  maxDuty: number;
  /** Normalised error band (percent of target) in which the duty holds: stops noise from walking the knob. */
  deadbandPct: number;
  /** Duty added per unit normalised error while the metric is above target but within the SLO. */
  gainUp: number;
  /** Duty added per unit normalised error once the SLO itself is violated (gain scheduling). */
  gainUpViolation: number;
  /** Duty removed per unit normalised error below target: slow, the SLO comes first. */
  gainDown: number;
  maxStepUp: number;
  maxStepDown: number;
  feedforward: boolean;
  /** Smallest arrival-rate rise that fires feedforward, percent. */
  ffThresholdPct: number;
  /** CUSUM threshold that declares a rise (see feedforward.ts): higher fires later and more rarely on noise. */
  ffCusumH: number;
  /** Duty added per unit relative rate rise. */
  ffGain: number;
  ffMaxStep: number;
  /** EWMA weight of each window in the reference rate. */
  ffRefAlpha: number;
  /** Duty at or above which the inner tier counts as saturated high. */
  highBound: number;
  /** Duty at or below which the inner tier counts as idle (with slack). */
  lowBound: number;
  /** Slack: metric <= target * (1 - slackPct/100). */
  slackPct: number;
  /** How long the duty must sit high before the share drops. */
  highDwellMs: number;
  /** How long the duty must sit low with slack before the share rises. */
  lowDwellMs: number;
  /** Minimum time between two MPS changes (each restarts training). */
  minMpsDwellMs: number;
  lowerStepPct: number;
  raiseStepPct: number;
  minSharePct: number;
  /** After lowering from share S, raising back to S or above is refused this long: no flip-flop. */
  ceilingHoldMs: number;
  /** On a raise, raise the duty so (1-duty)*share is unchanged: the restart does not hit the SLO. */
  bumplessRaise: boolean;
  /**
   * 'model': the outer tier moves the share in one step to where the online model (gpucolo-model.ts) says the
   * inner tier needs no sleep, when the predicted training gain pays for the restart. 'step': the share
   * walks by lowerStepPct / raiseStepPct when the inner tier sits at a bound (the earlier law).
   */
  outerMode: 'model' | 'step';
  /** Interference exponent gamma of the pressure x = (1 - duty) * share^gamma. */
  gamma: number;
  /** Training throughput exponent beta: throughput ~ (1 - duty) * share^beta. */
  beta: number;
  /** The model's share aims at this fraction of the latency room (target - L0): the rest is for noise. */
  modelSafety: number;
  /** One raise at most multiplies the pressure by this (latency is convex in pressure near saturation). */
  maxPressureRaise: number;
  /** Move the share only when the model predicts at least this much more training, percent. */
  minGainPct: number;
  /** Size the margin from the measured noise (else marginPct is fixed). */
  adaptiveMargin: boolean;
  marginMinPct: number;
  marginMaxPct: number;
  /** Margin percent per unit of relative noise. */
  noiseGain: number;
  /** EWMA weight of each window in the noise and alone-latency estimates. */
  modelAlpha: number;
}

export const GPUCOLO_DEFAULTS: Readonly<GpucoloOptions> = Object.freeze({
  metric: 'p99',
  marginPct: 30,
  innerPeriodMs: 200,
  estimatorWindows: 5,
  fastViolation: true,
  outerPeriodMs: 5_000,
  dutyPeriodMs: 50,
  initialDuty: 0.5,
  initialSharePct: 15,
  maxDuty: 1,
  deadbandPct: 3,
  gainUp: 0.5,
  gainUpViolation: 1.0,
  gainDown: 0.03,
  maxStepUp: 0.5,
  maxStepDown: 0.02,
  feedforward: true,
  ffThresholdPct: 20,
  ffCusumH: 4,
  ffGain: 0.7,
  ffMaxStep: 0.8,
  ffRefAlpha: 0.1,
  highBound: 0.7,
  lowBound: 0.1,
  slackPct: 20,
  highDwellMs: 4_000,
  lowDwellMs: 30_000,
  minMpsDwellMs: 30_000,
  lowerStepPct: 5,
  raiseStepPct: 5,
  minSharePct: 5,
  ceilingHoldMs: 60_000,
  bumplessRaise: true,
  outerMode: 'model',
  gamma: 1.6,
  beta: 0.5,
  modelSafety: 0.85,
  minGainPct: 10,
  maxPressureRaise: 2.2,
  adaptiveMargin: true,
  marginMinPct: 6,
  marginMaxPct: 30,
  noiseGain: 1.5,
  modelAlpha: 0.1,
});

/** Plain data, so an actor can persist it and a simulator can copy it. */
export interface GpucoloState {
  /** The integrator: in velocity form the duty itself is the integral of the (gained) error. */
  duty: number;
  /** Per-service arrival-rate detectors; their reference is the rate the current duty was settled at. */
  rateTrackers: Record<string, RateTracker>;
  /** Duty in force the last time no detector had evidence of a rise: the base feedforward adds to. */
  dutyAtRefRate: number | null;
  /** When the duty first reached highBound in the current run of such windows; null otherwise. */
  highSinceMs: number | null;
  /** When the duty first sat at lowBound with slack in the current run; null otherwise. */
  lowSinceMs: number | null;
  lastMpsChangeMs: number | null;
  /** The services' windows of the last estimatorWindows - 1 inner periods (oldest first): the 1 s estimator. */
  recent: LatencyWindow[][];
  /** A share that recently saturated the inner tier high: raises must stay below it until ceilingUntilMs. */
  ceilingPct: number | null;
  ceilingUntilMs: number | null;
  /** Controlled latency with training out of the way (ms), per service: measured while training restarts. */
  aloneMs?: Record<string, number>;
  /** Relative noise of the 200 ms tail around the 1 s estimate (EWMA); null until measured. */
  noise?: number | null;
  /** Margin (percent) the inner tier is steering with now. */
  marginPct?: number;
  /** Highest 1 s estimate of the tightest service's metric since the last outer decision (ms). */
  peakMs?: number | null;
  /** Lowest 1 s estimate per service in the current run of windows without training; null while training runs. */
  aloneRun?: Record<string, number> | null;
}

/** Defaults overlaid with the caller's options; throws on inconsistent bounds. */
export function resolveGpucoloOptions(o: Partial<GpucoloOptions> = {}): GpucoloOptions {
  const r: GpucoloOptions = { ...GPUCOLO_DEFAULTS, ...o };
  if (!(r.maxDuty > 0 && r.maxDuty <= 1)) throw new RangeError('gpucolo: maxDuty must be in (0, 1]');
  if (!(r.lowBound < r.highBound && r.highBound <= r.maxDuty)) {
    throw new RangeError('gpucolo: need lowBound < highBound <= maxDuty');
  }
  if (!(r.minSharePct >= 1 && r.minSharePct <= 100)) throw new RangeError('gpucolo: minSharePct must be in [1, 100]');
  if (!(r.marginPct >= 0 && r.marginPct < 100)) throw new RangeError('gpucolo: marginPct must be in [0, 100)');
  if (!(r.innerPeriodMs > 0 && r.outerPeriodMs >= r.innerPeriodMs)) {
    throw new RangeError('gpucolo: need 0 < innerPeriodMs <= outerPeriodMs');
  }
  return r;
}
