import { metrics, type Counter, type Gauge, type Histogram } from '@opentelemetry/api';
import type { GpuStatusEvent } from '../schemas/index.ts';

// Library code records through the API only: with no metrics exporter chosen these are no-ops.
interface Instruments {
  latency: Histogram;
  p99: Gauge;
  attainment: Gauge;
  sleepDuty: Gauge;
  sleepPerIteration: Gauge;
  mpsShare: Gauge;
  throughput: Gauge;
  gpusInUse: Gauge;
  gpusFreed: Gauge;
  rejected: Counter;
  decisions: Counter;
}

let cached: Instruments | undefined;

/** Forgets the instruments so the next record binds to the meter provider just installed. */
export function resetInstruments(): void {
  cached = undefined;
}

function instruments(): Instruments {
  if (cached) return cached;
  const m = metrics.getMeter('gpucolo', '0.1.0');
  cached = {
    latency: m.createHistogram('gpucolo.inference.latency', {
      unit: 'ms', description: 'latency of each finished inference request (batch), per service',
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000] },
    }),
    p99: m.createGauge('gpucolo.inference.p99', { unit: 'ms', description: 'p99 latency of the last window, per service' }),
    attainment: m.createGauge('gpucolo.slo.attainment', { unit: '1', description: 'fraction of 1 s windows whose p99 was within the SLO, per service' }),
    sleepDuty: m.createGauge('gpucolo.training.sleep_duty', { unit: '1', description: 'training sleep duty (fraction of each pacing period asleep), per GPU' }),
    sleepPerIteration: m.createGauge('gpucolo.training.sleep_per_iteration', { unit: 'ms', description: 'training sleep after each iteration (per-iteration pacing), per GPU' }),
    mpsShare: m.createGauge('gpucolo.training.mps_share', { unit: '%', description: 'training MPS active-thread percentage, per GPU' }),
    throughput: m.createGauge('gpucolo.training.throughput', { unit: '{iteration}/s', description: 'training iterations per second, per job' }),
    gpusInUse: m.createGauge('gpucolo.fleet.gpus_in_use', { unit: '{gpu}', description: 'GPUs the fleet plan keeps in use' }),
    gpusFreed: m.createGauge('gpucolo.fleet.gpus_freed', { unit: '{gpu}', description: 'GPUs the fleet plan frees' }),
    rejected: m.createCounter('gpucolo.bus.rejected', { unit: '{message}', description: 'messages dropped at the bus edge, by reason' }),
    decisions: m.createCounter('gpucolo.control.decisions', { unit: '{decision}', description: 'knob changes decided, by tier and knob' }),
  };
  return cached;
}

/** Records the latency of finished inference requests of one service. */
export function recordLatencies(host: string, gpu: string, serviceId: string, latenciesMs: readonly number[]): void {
  if (!latenciesMs.length) return;
  const h = instruments().latency;
  const attrs = { 'gpucolo.host': host, 'gpucolo.gpu': gpu, 'gpucolo.service': serviceId };
  for (const ms of latenciesMs) h.record(ms, attrs);
}

/** Records a GPU's status: per-service p99 and SLO attainment, the knobs, training throughput. */
export function recordGpuStatus(s: GpuStatusEvent): void {
  const i = instruments();
  const gpu = { 'gpucolo.host': s.host, 'gpucolo.gpu': s.gpu };
  for (const svc of s.services) {
    const attrs = { ...gpu, 'gpucolo.service': svc.serviceId };
    i.p99.record(svc.p99Ms, attrs);
    if (svc.sloWindows > 0) i.attainment.record(svc.sloWindowsMet / svc.sloWindows, attrs);
  }
  if (s.pacing.mode === 'duty') i.sleepDuty.record(s.trainingRunning ? s.pacing.duty : 1, gpu);
  else i.sleepPerIteration.record(s.pacing.sleepMs, gpu);
  i.mpsShare.record(s.mpsSharePct, gpu);
  for (const t of s.trainings) i.throughput.record(t.itersPerSec, { ...gpu, 'gpucolo.job': t.jobId });
}

/** Counts one decided knob change. */
export function recordDecision(host: string, gpu: string, tier: string, knob: string): void {
  instruments().decisions.add(1, { 'gpucolo.host': host, 'gpucolo.gpu': gpu, 'gpucolo.tier': tier, 'gpucolo.knob': knob });
}

/** Counts a message dropped at the bus edge. */
export function recordRejected(host: string, reason: string): void {
  instruments().rejected.add(1, { 'gpucolo.host': host, 'gpucolo.reason': reason });
}

/** Records what a fleet plan leaves: GPUs in use and GPUs freed. */
export function recordFleetPlan(gpusInUse: number, gpusFreed: number): void {
  const i = instruments();
  i.gpusInUse.record(gpusInUse);
  i.gpusFreed.record(gpusFreed);
}
