import { context as otelContext } from '@opentelemetry/api';
import { createActor, fromPromise, type Actor } from 'xstate';
import { hostMachine, type gpuMachine, type ScaledClock } from '../../actors/index.ts';
import { StateSaver, type Bus, type GpuStateStore, type StoredState } from '../../bus/index.ts';
import type { Knobs, PolicyName } from '../../control/index.ts';
import { GpuModel, SimGpuDevice, loadProfile, type GpuProfile } from '../../gpu/model/index.ts';
import type { GpuDevice } from '../../gpu/index.ts';
import { GpuTelemetry } from '../../observability/index.ts';
import { SCHEMA_VERSION, assertId, subjects } from '../../schemas/index.ts';
import { actuateJob } from './actuation.ts';
import type { GpuWiring } from './gpu-actors.ts';
import { keepStateSaved, loadState } from './gpu-state.ts';
import { buildGpu, gpuStart, type GpuParts } from './gpu-wiring.ts';
import { workloadFor, type WorkloadsFile } from './workloads.ts';

export interface HostOptions {
  hostId: string;
  /** Number of simulated GPUs. */
  gpus: number;
  workloads: WorkloadsFile;
  policy?: PolicyName;
  seed?: number;
  clock: ScaledClock;
  bus: Bus;
  /** Period of latency windows and training progress reports (device ms). */
  reportPeriodMs?: number;
  log?: (line: string) => void;
  /**
   * Builds the device of GPU `index` (default: a simulated GPU from the workloads' profile). A real
   * backend (gpu/nvidia) plugs in here; `initial` are the knobs training must be launched with.
   */
  makeDevice?: (index: number, gpuId: string, initial: Knobs) => GpuDevice;
  /** Backend label reported in host.lifecycle events (default `sim:N`). */
  backendLabel?: string;
  /**
   * JetStream KV store of each GPU's control state: read at start (a restarted runner resumes with its
   * policy, SLOs and knobs), written on every change.
   */
  stateStore?: GpuStateStore;
  /** Wall ms a drain-service command waits for the requests in flight before it replies that they are not done (default 10 s). */
  drainTimeoutMs?: number;
}

export interface RunningHost {
  hostId: string;
  gpuIds: string[];
  devices: GpuDevice[];
  gpuActors: Actor<typeof gpuMachine>[];
  stop(): Promise<void>;
}

/** The host's own state while it runs: its GPUs once built, and what stopping must wait for. */
interface HostRun {
  o: HostOptions;
  hostId: string;
  gpuIds: string[];
  policy: PolicyName;
  log: (line: string) => void;
  parts: GpuParts[];
  /** Release commands in flight when the GPU actors stop: awaited before the connection closes. */
  releases: Promise<void>[];
  savers: StateSaver[];
  simDevice: SimDeviceMaker;
}

type SimDeviceMaker = (index: number, gpuId: string, initial: Knobs) => GpuDevice;
const unix = () => Date.now();

/**
 * Runs one host: per GPU a GPU actor, an inference actor per service and a training actor per job, each
 * on its own subjects; they reach each other only through the bus.
 */
export async function startHost(o: HostOptions): Promise<RunningHost> {
  const run: HostRun = {
    o, hostId: assertId('host', o.hostId), gpuIds: Array.from({ length: o.gpus }, (_, i) => `gpu${i}`),
    policy: o.policy ?? o.workloads.policy ?? 'gpucolo', log: o.log ?? (() => {}),
    parts: [], releases: [], savers: [], simDevice: simDeviceMaker(o),
  };
  const { hostId, parts, gpuIds } = run;
  const host = createActor(hostActorMachine(run), { input: { host: hostId, gpus: gpuIds, backend: o.backendLabel ?? `sim:${o.gpus}` } });
  const started = new Promise<void>((resolve, reject) => {
    const sub = host.subscribe((s) => {
      if (s.matches('running')) { sub.unsubscribe(); resolve(); }
      else if (s.status === 'done') { sub.unsubscribe(); reject(new Error(`host ${hostId} failed to start: ${s.context.error ?? 'unknown'}`)); }
    });
  });
  host.start();
  await started;
  // Commands sent while the bus was down are lost, not retried (a late retry could undo a newer knob):
  // once it is back, every GPU actor sends its training jobs the knobs in force now.
  o.bus.onReconnect(() => resendKnobs(run));
  return {
    hostId,
    gpuIds,
    devices: parts.map((p) => p.device),
    gpuActors: parts.map((p) => p.gpu),
    async stop() {
      if (host.getSnapshot().status === 'done') return;
      const done = new Promise<void>((r) => host.subscribe((s) => { if (s.status === 'done') r(); }));
      host.send({ type: 'STOP' });
      await done;
      await o.bus.nc.flush().catch(() => undefined);
    },
  };
}

/** A built-in name or a profile file: read once, shared by every simulated GPU (the model never changes it). */
function simDeviceMaker(o: HostOptions): SimDeviceMaker {
  let simProfile: GpuProfile | undefined;
  return (index, gpuId, initial) => {
    const w = workloadFor(o.workloads, index);
    simProfile ??= loadProfile(o.workloads.profile ?? 'rtx3090-resnet50-wrn101');
    const model = new GpuModel({
      profile: simProfile,
      seed: (o.seed ?? 1) * 1000 + index,
      startMs: o.clock.now(),
      services: w.services.map((s) => ({ id: s.id, batch: s.batch, rateRps: s.rateRps })),
      // Jobs are launched with the policy's initial knobs, so control starts without an MPS restart.
      trainings: w.trainings.map((t) => ({ id: t.id, mpsSharePct: initial.mpsSharePct, pacing: initial.pacing, running: initial.trainingRunning })),
      ...(o.workloads.mpsRestartMs !== undefined ? { mpsRestartMs: o.workloads.mpsRestartMs } : {}),
    });
    return new SimGpuDevice(model, o.clock.now, { id: gpuId, index });
  };
}

/** Builds GPU `index` of the host (its device, actors and handlers), resuming from its stored state if any. */
function buildHostGpu(run: HostRun, index: number, restored: StoredState | undefined): GpuParts {
  const { o, hostId } = run;
  const gpuId = run.gpuIds[index]!;
  const { policy, initial } = gpuStart(run.policy, restored);
  const telemetry = new GpuTelemetry(hostId, gpuId);
  const device = o.makeDevice ? o.makeDevice(index, gpuId, initial) : run.simDevice(index, gpuId, initial);
  const wiring: GpuWiring = {
    hostId, gpuId, device, telemetry, bus: o.bus, clock: o.clock, reportPeriodMs: o.reportPeriodMs ?? 200, log: run.log, unix,
    ...(o.drainTimeoutMs !== undefined ? { drainTimeoutMs: o.drainTimeoutMs } : {}),
    ...(restored ? { restoredSloMs: restored.record.sloMs } : {}),
  };
  const parts = buildGpu(wiring, { workloads: o.workloads, index, policy, initial, releases: run.releases, ...(restored ? { restored } : {}) });
  if (o.stateStore) run.savers.push(keepStateSaved(parts.gpu, new StateSaver(o.stateStore, run.log)));
  return parts;
}

/** The host actor, provided with the host's I/O: lifecycle events, starting and stopping every GPU's actors. */
function hostActorMachine(run: HostRun) {
  const { o, hostId, gpuIds, parts, log } = run;
  const bus = o.bus;
  return hostMachine.provide({
    actions: {
      announce: (_a, { state }) => {
        bus.publish(subjects.hostLifecycle(hostId), {
          v: SCHEMA_VERSION, type: 'host.lifecycle', host: hostId, unixMs: unix(), state, gpus: gpuIds, backend: o.backendLabel ?? `sim:${o.gpus}`, pid: process.pid,
        });
        log(`host ${hostId}: ${state}`);
      },
    },
    actors: {
      startActors: fromPromise(async () => {
        const states = o.stateStore ? await Promise.all(gpuIds.map((g) => loadState(o.stateStore!, hostId, g, bus.connectedAtMs, log))) : [];
        for (let i = 0; i < o.gpus; i++) parts.push(buildHostGpu(run, i, states[i]));
        await bus.nc.flush();
        for (const p of parts) {
          for (const a of [...p.placement.trainings.values(), ...p.placement.services.values()]) a.actor.start();
          p.gpu.start();
          p.watchWorkloads();
        }
      }),
      stopActors: fromPromise(async () => {
        // The GPU actors release training over the bus first; the training actors then release
        // locally as they stop, so a job is never left throttled even if the bus is gone.
        for (const p of parts) p.gpu.send({ type: 'STOP' });
        await Promise.race([Promise.allSettled(run.releases), new Promise((r) => setTimeout(r, 3000))]);
        for (const p of parts) for (const a of [...p.placement.services.values(), ...p.placement.trainings.values()]) a.actor.send({ type: 'STOP' });
        await bus.nc.flush().catch(() => undefined);
        await Promise.all(run.savers.map((s) => s.close()));
        for (const p of parts) await p.device.close();
      }),
    },
  });
}

/** After a bus reconnect: every running GPU actor sends its training jobs the knobs in force now. */
function resendKnobs(run: HostRun): void {
  const active = run.parts.filter((p) => p.gpu.getSnapshot().status === 'active');
  for (const p of active) {
    const knobs = p.gpu.getSnapshot().context.knobs;
    for (const jobId of p.jobIds) void actuateJob(run.o.bus, run.hostId, p.gpuId, jobId, undefined, knobs, otelContext.active(), run.log);
  }
  run.log(`host ${run.hostId}: bus reconnected; knobs re-sent to the training jobs of ${active.length} GPU(s)`);
}
