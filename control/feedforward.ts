/**
 * Arrival-rate feedforward for the inner tier. Latency reacts to a load step only after queues build, and the
 * feedback loop sees it one period later still; the arrival rate moves at once. So when a service's rate jumps
 * against the rate the current duty was settled at, raise the duty before the tail does.
 *
 * The reference rate per service is an EWMA of its rate (it follows slow drifts, which feedback handles), reset
 * to the new rate whenever feedforward fires, so one step fires once. The step is meant to be added to the duty
 * that was settled at the reference rate (the caller keeps it), not to whatever feedback has made of it since,
 * so feedforward and feedback do not both answer the same rise. A rise fires only when it is both large
 * (>= thresholdPct) and statistically real: a Poisson z-score of the window's arrivals against the reference,
 * because short windows at modest rates jitter by tens of percent on their own.
 */
import type { LatencyWindow } from './types.ts';

export interface FeedforwardOptions {
  /** Smallest relative rise that fires, percent. */
  thresholdPct: number;
  /** Smallest Poisson z-score of the window's arrivals against the reference that fires. */
  minZ: number;
  /** Duty added per unit relative rise (rise 0.4 with gain 0.5 => +0.2 duty). */
  gain: number;
  /** Largest duty step one firing may add. */
  maxStep: number;
  /** EWMA weight of a new window in the reference rate when nothing fires. */
  refAlpha: number;
}

export interface FeedforwardResult {
  /** Duty to add (0 when nothing fired). */
  step: number;
  /** Updated reference rates per service. */
  refRateRps: Record<string, number>;
  /** The service whose rise fired (largest step), if any. */
  serviceId?: string;
  risePct: number;
  z: number;
  rateRps: number;
  refRps: number;
  /** Largest z-score over all services, fired or not: is any rate elevated at all? */
  maxZ: number;
}

/** Compare each service's rate with its reference; return the duty step to add and the new references. */
export function feedforward(
  refRateRps: Readonly<Record<string, number>>,
  services: readonly LatencyWindow[],
  o: FeedforwardOptions,
): FeedforwardResult {
  const next: Record<string, number> = { ...refRateRps };
  let best: FeedforwardResult = { step: 0, refRateRps: next, risePct: 0, z: 0, rateRps: 0, refRps: 0, maxZ: Number.NEGATIVE_INFINITY };
  let maxZ = Number.NEGATIVE_INFINITY;
  for (const w of services) {
    const prev = refRateRps[w.serviceId];
    const rate = w.rateRps;
    if (prev === undefined || !Number.isFinite(prev)) {
      next[w.serviceId] = rate;
      continue;
    }
    const windowS = w.windowMs / 1000;
    const expected = prev * windowS;
    const observed = rate * windowS;
    const z = (observed - expected) / Math.sqrt(Math.max(expected, 1));
    maxZ = Math.max(maxZ, z);
    const rise = prev > 0 ? rate / prev - 1 : rate > 0 ? Number.POSITIVE_INFINITY : 0;
    if (rise * 100 >= o.thresholdPct && z >= o.minZ) {
      const step = Math.min(o.maxStep, o.gain * rise);
      next[w.serviceId] = rate;
      if (step > best.step) {
        best = { step, refRateRps: next, serviceId: w.serviceId, risePct: rise * 100, z, rateRps: rate, refRps: prev, maxZ };
      }
    } else {
      next[w.serviceId] = prev + o.refAlpha * (rate - prev);
    }
  }
  best.refRateRps = next;
  best.maxZ = maxZ;
  return best;
}
