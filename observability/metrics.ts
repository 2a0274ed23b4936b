import { hostname } from 'node:os';
import { metrics, type Attributes, type Counter, type Gauge, type Histogram } from '@opentelemetry/api';
import type { GpuStatusEvent } from '../schemas/index.ts';
import { GPUCOLO_VERSION } from './version.ts';

// Library code records through the API only: with no metrics exporter chosen these are no-ops.
// Names carry their unit (Prometheus reads them as written: `gpucolo_inference_latency_seconds`); times are
// in seconds; no percentile is precomputed (p99 is `histogram_quantile` over the latency histogram).
interface Instruments {
  latency: Histogram;
  slo: Gauge;
  attainment: Gauge;
  sleepDuty: Gauge;
  sleepPerIteration: Gauge;
  mpsShare: Gauge;
  throughput: Gauge;
  paused: Gauge;
  safeMode: Gauge;
  gpusInUse: Gauge;
  gpusFreed: Gauge;
  rejected: Counter;
  decisions: Counter;
}

/** Metric names as Prometheus serves them (counters gain `_total`): the contract of deploy/'s dashboard and rules. */
export const METRIC = {
  latency: 'gpucolo_inference_latency_seconds',
  slo: 'gpucolo_inference_slo_seconds',
  attainment: 'gpucolo_slo_attainment_ratio',
  sleepDuty: 'gpucolo_training_sleep_duty_ratio',
  sleepPerIteration: 'gpucolo_training_sleep_per_iteration_seconds',
  mpsShare: 'gpucolo_training_mps_share_percent',
  throughput: 'gpucolo_training_iterations_per_second',
  paused: 'gpucolo_training_paused_seconds',
  safeMode: 'gpucolo_gpu_safe_mode',
  gpusInUse: 'gpucolo_fleet_gpus_in_use',
  gpusFreed: 'gpucolo_fleet_gpus_freed',
  rejected: 'gpucolo_bus_rejected_total',
  decisions: 'gpucolo_control_decisions_total',
} as const;

/** Latency buckets, seconds: fine around common SLOs (10-50 ms). */
export const LATENCY_BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1];

let cached: Instruments | undefined;

/** Forgets the instruments so the next record binds to the meter provider just installed. */
export function resetInstruments(): void {
  cached = undefined;
}

const otelName = (promName: string) => promName.replace(/_total$/, '').replace(/^gpucolo_([a-z]+)_/, 'gpucolo.$1.');

function instruments(): Instruments {
  if (cached) return cached;
  const m = metrics.getMeter('gpucolo', GPUCOLO_VERSION);
  const gauge = (name: string, unit: string, description: string) => m.createGauge(otelName(name), { unit, description });
  cached = {
    latency: m.createHistogram(otelName(METRIC.latency), {
      unit: 's', description: 'latency of each finished inference request (batch), per service',
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    }),
    slo: gauge(METRIC.slo, 's', 'latency SLO in force (the p99, or the mean in paper mode, must stay under it), per service'),
    attainment: gauge(METRIC.attainment, '1', 'fraction of 1 s windows since the service started whose tail latency was within the SLO, per service'),
    sleepDuty: gauge(METRIC.sleepDuty, '1', 'training sleep duty (fraction of each pacing period asleep; 1 while training is stopped), per GPU'),
    sleepPerIteration: gauge(METRIC.sleepPerIteration, 's', 'training sleep after each iteration (per-iteration pacing), per GPU'),
    mpsShare: gauge(METRIC.mpsShare, '%', 'training MPS active-thread percentage, per GPU'),
    throughput: gauge(METRIC.throughput, '{iteration}/s', 'training iterations per second, per job'),
    paused: gauge(METRIC.paused, 's', 'device seconds a job meant to run has made no iteration (0 while it progresses), per job'),
    safeMode: gauge(METRIC.safeMode, '1', '1 while the GPU actor holds training at its safe setting (telemetry lost, device fault), else 0'),
    gpusInUse: gauge(METRIC.gpusInUse, '{gpu}', 'GPUs the fleet plan keeps in use'),
    gpusFreed: gauge(METRIC.gpusFreed, '{gpu}', 'GPUs the fleet plan frees'),
    rejected: m.createCounter(otelName(METRIC.rejected), { unit: '{message}', description: 'messages dropped at the bus edge, by reason' }),
    decisions: m.createCounter(otelName(METRIC.decisions), { unit: '{decision}', description: 'knob changes decided, by tier (inner, outer, safety) and knob' }),
  };
  return cached;
}

/** What identifies a GPU beyond gpucolo's ids: its UUID (joins with DCGM exporter's `UUID`). */
export interface GpuIdentity {
  uuid?: string;
}

const identities = new Map<string, GpuIdentity>();
let hostName = hostname();

/**
 * Names a GPU's UUID for its metrics (call before the GPU's first record, so every series carries it).
 * `host.name` is the machine's hostname unless `setMetricsHostName` says otherwise.
 */
export function setGpuIdentity(host: string, gpu: string, id: GpuIdentity): void {
  identities.set(`${host}/${gpu}`, id);
}

/** Overrides the `host.name` label (default: os.hostname(), as the resource detector reports it). */
export function setMetricsHostName(name: string): void {
  hostName = name;
}

/** The labels of every per-GPU series: gpucolo's host and GPU ids, the machine's host name, the GPU UUID when known. */
export function gpuLabels(host: string, gpu: string): Attributes {
  const uuid = identities.get(`${host}/${gpu}`)?.uuid;
  return { 'gpucolo.host': host, 'gpucolo.gpu': gpu, 'host.name': hostName, ...(uuid ? { 'gpu.uuid': uuid } : {}) };
}

/**
 * `base` and one more label, as a new object. Not `{ ...base, key: value }`: on Node 20 (V8 11.3) an object
 * spread and then given a key its source lacks outlives the young generation, and these are made for every
 * window and status.
 */
function withLabel(base: Attributes, key: string, value: string): Attributes {
  return Object.assign({}, base, { [key]: value });
}

/** Records the latency of finished inference requests of one service. */
export function recordLatencies(host: string, gpu: string, serviceId: string, latenciesMs: readonly number[]): void {
  if (!latenciesMs.length) return;
  const h = instruments().latency;
  const attrs = withLabel(gpuLabels(host, gpu), 'gpucolo.service', serviceId);
  for (const ms of latenciesMs) h.record(ms / 1000, attrs);
}

/** Per job: the device time of its last progress and its iteration count then. */
const lastProgress = new Map<string, { iterations: number; tMs: number }>();

/** Records a GPU's status: per-service SLO and attainment, the knobs, training throughput and stalls, safe mode. */
export function recordGpuStatus(s: GpuStatusEvent): void {
  const i = instruments();
  const gpu = gpuLabels(s.host, s.gpu);
  for (const svc of s.services) {
    const attrs = withLabel(gpu, 'gpucolo.service', svc.serviceId);
    i.slo.record(svc.sloMs / 1000, attrs);
    if (svc.sloWindows > 0) i.attainment.record(svc.sloWindowsMet / svc.sloWindows, attrs);
  }
  if (s.pacing.mode === 'duty') i.sleepDuty.record(s.trainingRunning ? s.pacing.duty : 1, gpu);
  else i.sleepPerIteration.record(s.pacing.sleepMs / 1000, gpu);
  i.mpsShare.record(s.mpsSharePct, gpu);
  i.safeMode.record(s.state === 'safe' ? 1 : 0, gpu);
  for (const t of s.trainings) {
    const attrs = withLabel(gpu, 'gpucolo.job', t.jobId);
    i.throughput.record(t.itersPerSec, attrs);
    // Paused: meant to run (neither stopped by a decision nor restarting for a share change) yet no
    // iteration since the last progress.
    const key = `${s.host}/${s.gpu}/${t.jobId}`;
    const last = lastProgress.get(key);
    if (!last || t.iterations !== last.iterations || !s.trainingRunning || t.state !== 'running' || s.tMs < last.tMs) {
      lastProgress.set(key, { iterations: t.iterations, tMs: s.tMs });
      i.paused.record(0, attrs);
    } else {
      i.paused.record((s.tMs - last.tMs) / 1000, attrs);
    }
  }
}

/** Counts one decided knob change. */
export function recordDecision(host: string, gpu: string, tier: string, knob: string): void {
  instruments().decisions.add(1, Object.assign({}, gpuLabels(host, gpu), { 'gpucolo.tier': tier, 'gpucolo.knob': knob }));
}

/** Counts a message dropped at the bus edge. */
export function recordRejected(host: string, reason: string): void {
  instruments().rejected.add(1, { 'gpucolo.host': host, 'host.name': hostName, 'gpucolo.reason': reason });
}

/** Records what a fleet plan leaves: GPUs in use and GPUs freed. */
export function recordFleetPlan(gpusInUse: number, gpusFreed: number): void {
  const i = instruments();
  i.gpusInUse.record(gpusInUse);
  i.gpusFreed.record(gpusFreed);
}
