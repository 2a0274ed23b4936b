// The fleet's view of one GPU, folded from its gpu.status events, and the batch cost behind a measured mean
// latency. Pure: numbers in, numbers out (the fleet actor, actors/fleet.ts, holds the view).

export interface FleetServiceView {
  id: string;
  sloMs: number;
  rateRps: number;
  /** Smoothed p99 of recent status periods (one noisy window does not move load). */
  p99Ms: number;
  /** Estimated cost of one batch on its GPU as it is (interference included), ms, smoothed. */
  serviceMs: number;
}

export interface FleetGpuView {
  host: string;
  gpu: string;
  /** Fleet clock when the last status arrived. */
  seenMs: number;
  services: FleetServiceView[];
  trainings: string[];
}

/** The part of a gpu.status event the view is built from (a GpuStatusEvent fits). */
export interface FleetStatusInput {
  host: string;
  gpu: string;
  services: ReadonlyArray<{ serviceId: string; sloMs: number; rateRps: number; p99Ms: number; meanMs: number }>;
  trainings: ReadonlyArray<{ jobId: string }>;
}

const P99_SMOOTHING = 0.5;
const COST_SMOOTHING = 0.2;

/**
 * The batch cost s behind a measured mean latency m at arrival rate r, by inverting the M/D/1 mean
 * m = s + rho s / (2 (1 - rho)), rho = r s: queueing taken out, interference left in (so it errs high).
 */
export function batchCostMs(meanMs: number, rateRps: number): number {
  if (!(meanMs > 0)) return 0;
  const perMs = Math.max(0, rateRps) / 1000;
  let lo = 0;
  let hi = Math.min(meanMs, perMs > 0 ? 1 / perMs : meanMs);
  for (let i = 0; i < 40; i++) {
    const s = (lo + hi) / 2;
    const rho = perMs * s;
    const m = rho >= 1 ? Number.POSITIVE_INFINITY : s + (rho * s) / (2 * (1 - rho));
    if (m > meanMs) hi = s; else lo = s;
  }
  return lo;
}

/**
 * Folds a GPU status into the fleet's view of that GPU. Changes neither argument: returns the new view and
 * `updated`, the new cost estimates of this status's services only (by service id; services it learnt nothing
 * about are absent), for the caller to merge into its estimates. Only this GPU's services are touched, so a
 * caller holding 10,000 GPUs' estimates need not copy them per status.
 */
export function viewOf(
  status: FleetStatusInput, prev: FleetGpuView | undefined, estimates: Readonly<Record<string, number>>, nowMs: number,
): { view: FleetGpuView; updated: Record<string, number> } {
  const updated: Record<string, number> = {};
  const services = status.services.map((s) => {
    const before = prev?.services.find((x) => x.id === s.serviceId);
    const est = batchCostMs(s.meanMs, s.rateRps);
    const prior = Object.hasOwn(updated, s.serviceId) ? updated[s.serviceId] : estimates[s.serviceId];
    // A GPU past its SLO is queue-bound: its mean says how long the queue is, not what a batch costs.
    // Learn the cost only from windows within the SLO (or when nothing better is known yet).
    if (est > 0 && (s.p99Ms <= s.sloMs || prior === undefined)) {
      updated[s.serviceId] = prior === undefined ? est : COST_SMOOTHING * est + (1 - COST_SMOOTHING) * prior;
    }
    return {
      id: s.serviceId, sloMs: s.sloMs, rateRps: s.rateRps,
      p99Ms: before ? P99_SMOOTHING * s.p99Ms + (1 - P99_SMOOTHING) * before.p99Ms : s.p99Ms,
      serviceMs: updated[s.serviceId] ?? estimates[s.serviceId] ?? 0,
    };
  });
  return { view: { host: status.host, gpu: status.gpu, seenMs: nowMs, services, trainings: status.trainings.map((t) => t.jobId) }, updated };
}
