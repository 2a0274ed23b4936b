// One GPU of a host, put together: its device's health, its actors (gpu-actors.ts), the bus handlers that
// feed the GPU actor, and the host's side of the fleet's placements.
import { context as otelContext } from '@opentelemetry/api';
import type { Actor } from 'xstate';
import { inferenceReportOf, policyFor, type gpuMachine } from '../../actors/index.ts';
import type { StoredState } from '../../bus/index.ts';
import { isPolicyName, POLICY_NAMES, type Knobs, type PolicyName } from '../../control/index.ts';
import type { GpuDevice } from '../../gpu/index.ts';
import { SCHEMA_VERSION, subjects } from '../../schemas/index.ts';
import { actuateJob } from './actuation.ts';
import { makeGpuActor, makeInference, makeTraining, type GpuWiring } from './gpu-actors.ts';
import { servePlacement, type PlacementHost } from './fleet-placement.ts';
import type { WorkloadsFile } from './workloads.ts';
import { workloadFor } from './workloads.ts';

export interface GpuParts {
  gpuId: string;
  device: GpuDevice;
  gpu: Actor<typeof gpuMachine>;
  /** The inference and training actors on this GPU now; the fleet's placements add and remove them. */
  placement: PlacementHost;
  jobIds: string[];
  /** Starts passing the device's workload news (a service's process down or back) to the GPU actor, once it runs. */
  watchWorkloads: () => void;
}

/** The policy and starting knobs of a GPU: its restored state's, else the host's policy and its initial knobs. */
export function gpuStart(hostPolicy: PolicyName, restored: StoredState | undefined): { policy: PolicyName; initial: Knobs } {
  const r = restored?.record;
  const policy = r && isPolicyName(r.policy) ? (r.policy as PolicyName) : hostPolicy;
  return { policy, initial: r?.knobs ?? policyFor(policy, {}).initialKnobs() };
}

/** What buildGpu needs besides the wiring: the workloads, where to start from, and the host's release list. */
export interface GpuBuild {
  workloads: WorkloadsFile;
  index: number;
  policy: PolicyName;
  initial: Knobs;
  restored?: StoredState;
  releases: Promise<void>[];
}

/** Builds (does not start) one GPU: its actors, its bus handlers and its placement handler. */
export function buildGpu(w: GpuWiring, b: GpuBuild): GpuParts {
  const { hostId, gpuId, device, bus } = w;
  const spec = workloadFor(b.workloads, b.index);
  // A device whose own machinery fails (an MPS daemon in fault, hung or gone) says so as a safety event.
  device.onHealth?.((h) => {
    bus.publish(subjects.gpuSafety(hostId, gpuId), { v: SCHEMA_VERSION, type: 'gpu.safety', host: hostId, gpu: gpuId, tMs: device.now(), unixMs: w.unix(), condition: h.state === 'ok' ? 'device-restored' : 'device-fault', detail: h.detail });
  });
  const services = new Map(spec.services.map((s) => {
    const placed = { ...s };
    return [s.id, { ...makeInference(w, placed), spec: placed }] as const;
  }));
  const trainings = new Map(spec.trainings.map((t) => [t.id, { ...makeTraining(w, t.id, 0), baseIterations: 0 }] as const));
  const jobIds = spec.trainings.map((t) => t.id);
  const restoredKnobs = b.restored?.record.knobs;
  const gpu = makeGpuActor(w, { policy: b.policy, initial: b.initial, jobIds, releases: b.releases, ...(restoredKnobs ? { restoredKnobs } : {}) });
  // A service whose process died is a safety matter: the GPU actor holds training at its safe duty until it is back.
  const watchWorkloads = () => device.onWorkload?.((e) => {
    gpu.send(e.state === 'down' ? { type: 'WORKLOAD_DOWN', serviceId: e.serviceId, detail: e.detail } : { type: 'WORKLOAD_UP', serviceId: e.serviceId });
  });
  const placement = placementHost(w, gpu, jobIds, services, trainings);
  registerGpuHandlers(w, gpu, placement);
  servePlacement(bus, placement);
  return { gpuId, device, gpu, placement, jobIds, watchWorkloads };
}

/** Feeds the GPU actor: its services' latency windows, its jobs' progress, and gpu.command requests. */
export function registerGpuHandlers(w: GpuWiring, gpu: Actor<typeof gpuMachine>, p: Pick<PlacementHost, 'services' | 'trainings'>): void {
  const { hostId, gpuId, bus, telemetry } = w;
  bus.subscribe<'inference.window'>(subjects.inferenceWindow(hostId, gpuId, '*'), ({ message, traceContext }) => {
    const serviceId = message.serviceId;
    // A drained service's last window can land after it left: it no longer concerns this GPU's controller.
    if (!p.services.has(serviceId)) return;
    const report = inferenceReportOf(message);
    telemetry.onWindow(serviceId, report, traceContext);
    gpu.send({ type: 'WINDOW', serviceId, report });
  });
  bus.subscribe<'training.progress'>(subjects.trainingProgress(hostId, gpuId, '*'), ({ message }) => {
    const { v: _v, type: _t, host: _h, gpu: _g, jobId, ...report } = message;
    if (!p.trainings.has(jobId)) return;
    telemetry.onProgress(jobId, report.itersPerSec);
    gpu.send({ type: 'PROGRESS', jobId, report });
  });
  bus.serve<'gpu.command'>(subjects.gpuCommand(hostId, gpuId), ({ message: m }) => {
    const c = gpu.getSnapshot().context;
    if (m.action === 'set-slo') {
      if (m.sloMs === undefined) return { ok: false, error: 'set-slo needs sloMs' };
      gpu.send({ type: 'SET_SLO', sloMs: m.sloMs, ...(m.serviceId ? { serviceId: m.serviceId } : {}) });
      for (const [id, a] of p.services) if (!m.serviceId || id === m.serviceId) a.actor.send({ type: 'SET_SLO', sloMs: m.sloMs });
    } else if (m.action === 'set-policy') {
      const name = m.policy as PolicyName;
      if (!m.policy || !isPolicyName(name)) return { ok: false, error: `unknown policy ${JSON.stringify(m.policy)}; known: ${POLICY_NAMES.join(', ')}` };
      gpu.send({ type: 'SET_POLICY', policy: name });
    }
    const now = gpu.getSnapshot().context;
    return { ok: true, state: { policy: now.policyName, knobs: now.knobs, mpsChanges: c.mpsChanges, sleepChanges: c.sleepChanges } };
  });
}

/** The host's side of one GPU for the fleet's placements: its actors, and how workloads come and go. */
export function placementHost(
  w: GpuWiring, gpu: Actor<typeof gpuMachine>, jobIds: string[], services: PlacementHost['services'], trainings: PlacementHost['trainings'],
): PlacementHost {
  const { hostId, gpuId, device, bus, log } = w;
  return {
    hostId, gpuId, device, services, trainings,
    ...(w.drainTimeoutMs !== undefined ? { drainTimeoutMs: w.drainTimeoutMs } : {}),
    makeInference: (s) => makeInference(w, s),
    makeTraining: (jobId, baseIterations) => makeTraining(w, jobId, baseIterations),
    knobs: () => gpu.getSnapshot().context.knobs,
    onServiceRemoved: (serviceId) => gpu.send({ type: 'SERVICE_REMOVED', serviceId }),
    onTrainingAdded: (jobId) => {
      if (!jobIds.includes(jobId)) jobIds.push(jobId);
      // Every knob, so the job runs under this GPU's controller from its first iteration.
      void actuateJob(bus, hostId, gpuId, jobId, undefined, gpu.getSnapshot().context.knobs, otelContext.active(), log);
    },
    onTrainingRemoved: (jobId) => {
      const i = jobIds.indexOf(jobId);
      if (i >= 0) jobIds.splice(i, 1);
      gpu.send({ type: 'TRAINING_REMOVED', jobId });
    },
  };
}
