/**
 * Several inference services on one GPU share one pair of knobs, so the service closest to (or furthest past)
 * its SLO drives them: the one with the largest metric/SLO ratio.
 */
import type { LatencyWindow } from './types.ts';
import { metricOf, type LatencyMetric } from './window.ts';

export interface TightestPick {
  service: LatencyWindow;
  /** The driving service's metric (ms). */
  measuredMs: number;
  /** measuredMs / sloMs: above 1 means the SLO is violated. */
  ratio: number;
}

/**
 * The service with the largest metric/SLO ratio among those with samples (count > 0); ties go to the smaller
 * SLO. Undefined when no service finished a request in the window: there is nothing to regulate on.
 */
export function pickTightest(services: readonly LatencyWindow[], metric: LatencyMetric = 'p99'): TightestPick | undefined {
  let best: TightestPick | undefined;
  for (const service of services) {
    if (service.count === 0 || !(service.sloMs > 0)) continue;
    const measuredMs = metricOf(service, metric);
    const ratio = measuredMs / service.sloMs;
    if (!best || ratio > best.ratio || (ratio === best.ratio && service.sloMs < best.service.sloMs)) {
      best = { service, measuredMs, ratio };
    }
  }
  return best;
}

/** The service with the smallest SLO, samples or not: who to name when every window is empty. */
export function smallestSlo(services: readonly LatencyWindow[]): LatencyWindow | undefined {
  let best: LatencyWindow | undefined;
  for (const s of services) if (!best || s.sloMs < best.sloMs) best = s;
  return best;
}
