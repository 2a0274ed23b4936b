/**
 * Arrival-rate feedforward for the inner tier. Latency reacts to a load step only after queues build, and the
 * feedback loop sees it a period later still; the arrival rate moves at once. So when a service's rate jumps
 * against the rate the current duty was settled at, the duty goes up before the tail does.
 *
 * Detection is a one-sided Poisson CUSUM per service, because a 200 ms window at 100 rps holds ~20 arrivals
 * and jitters by +-20% on its own: a per-window threshold either fires on noise or misses real steps. With
 * reference rate r0 and alternative r1 = r0 * (1 + thresholdPct/100), each window adds its log-likelihood ratio
 *     S <- max(0, S + n * ln(r1/r0) - (r1 - r0) * T)          (n arrivals in T seconds)
 * and a rise is declared when S >= cusumH. The larger the jump or the rate, the sooner it fires (one window for
 * a +60% step at 1000 rps, about four at 100 rps); h = 8 keeps false alarms at steady Poisson load to about
 * one in e^8 windows. The rise is measured over the run of windows that built S up.
 *
 * The reference is an EWMA of the windows' rates (it follows slow drift, which feedback handles). It is frozen
 * while evidence builds (S > 0), so a real rise is not diluted into it; when S falls back to 0 the run's windows
 * are folded in after all (skipping them for good would keep only quiet windows, bias the reference low and
 * raise false alarms). When a rise is declared the reference is re-based to the run's rate: one step fires once.
 * The step returned is meant to be added to the duty that was settled at the reference rate (the caller keeps
 * it), not to what feedback has already made of it, so both do not answer the same rise. gpucolo uses the detector
 * as its rate tracker (gain 1: the step is the relative rise): the reference is the load level its model plans the
 * duty for, a declared rise moves that level at once.
 */
import type { LatencyWindow } from './types.ts';

export interface FeedforwardOptions {
  /** Smallest relative rise that counts, percent: the CUSUM's alternative hypothesis. */
  thresholdPct: number;
  /** CUSUM decision threshold (log-likelihood units). */
  cusumH: number;
  /** Duty added per unit relative rise (rise 0.5 with gain 0.4 => +0.2 duty). */
  gain: number;
  /** Largest duty step one firing may add. */
  maxStep: number;
  /** EWMA weight of each window in the reference rate. */
  refAlpha: number;
}

/** Per-service detector state (plain data). */
export interface RateTracker {
  refRps: number;
  cusum: number;
  /** Arrivals, time and windows of the current run of windows with S > 0. */
  runArrivals: number;
  runMs: number;
  runWindows: number;
}

export interface FeedforwardResult {
  /** Duty to add to the settled duty (0 when nothing fired). */
  step: number;
  trackers: Record<string, RateTracker>;
  /** The service whose rise fired (largest step), if any. */
  serviceId?: string;
  risePct: number;
  rateRps: number;
  refRps: number;
  /** True when no service has evidence building (every S is 0): the load is where the duty settled. */
  calm: boolean;
}

/** A tracker at reference `refRps` with no evidence building, as one literal (no spread of a shared object per window). */
function idle(refRps: number): RateTracker {
  return { refRps, cusum: 0, runArrivals: 0, runMs: 0, runWindows: 0 };
}

/** Advance every service's detector by one window; return the duty step to add and the new trackers. */
export function feedforward(
  trackers: Readonly<Record<string, RateTracker>>,
  services: readonly LatencyWindow[],
  o: FeedforwardOptions,
): FeedforwardResult {
  const next: Record<string, RateTracker> = { ...trackers };
  const out: FeedforwardResult = { step: 0, trackers: next, risePct: 0, rateRps: 0, refRps: 0, calm: true };
  const lnRatio = Math.log(1 + o.thresholdPct / 100);
  for (const w of services) {
    const t = trackers[w.serviceId];
    const windowS = w.windowMs / 1000;
    const arrivals = w.rateRps * windowS;
    if (!t || !(t.refRps > 0)) {
      // No reference yet (or a silent service): adopt the first rate seen with any traffic.
      next[w.serviceId] = idle(w.rateRps);
      continue;
    }
    const cusum = Math.max(0, t.cusum + arrivals * lnRatio - t.refRps * (o.thresholdPct / 100) * windowS);
    const runArrivals = t.runArrivals + arrivals;
    const runMs = t.runMs + w.windowMs;
    const runWindows = t.runWindows + 1;
    const runRps = runMs > 0 ? runArrivals / (runMs / 1000) : 0;
    if (cusum === 0) {
      // k windows of EWMA at the run's mean rate, applied at once.
      const weight = 1 - (1 - o.refAlpha) ** runWindows;
      next[w.serviceId] = idle(t.refRps + weight * (runRps - t.refRps));
      continue;
    }
    if (cusum < o.cusumH) {
      next[w.serviceId] = { refRps: t.refRps, cusum, runArrivals, runMs, runWindows };
      out.calm = false;
      continue;
    }
    const rise = runRps / t.refRps - 1;
    next[w.serviceId] = idle(runRps);
    const step = rise * 100 >= o.thresholdPct ? Math.min(o.maxStep, o.gain * rise) : 0;
    if (step > out.step) Object.assign(out, { step, serviceId: w.serviceId, risePct: rise * 100, rateRps: runRps, refRps: t.refRps });
  }
  return out;
}
