import { context as otelContext, trace, type Context } from '@opentelemetry/api';
import { createActor, fromPromise, type Actor } from 'xstate';
import {
  gpuMachine, hostMachine, inferenceMachine, policyFor, trainingMachine, type GpuContext, type ScaledClock, type TrainingCommandEvent,
} from '../actors/index.ts';
import { StateSaver, type Bus, type CommandBody, type GpuStateStore, type StoredState } from '../bus/index.ts';
import { isPolicyName, POLICY_NAMES, samePacing, type Knobs, type PolicyName } from '../control/index.ts';
import { GpuModel, SimGpuDevice, loadProfile, type GpuProfile } from '../gpu/model/index.ts';
import type { GpuDevice } from '../gpu/index.ts';
import { commandSpan, failSpan, GpuTelemetry, recordLatencies, SPAN, type TracedStep } from '../observability/index.ts';
import { SCHEMA_VERSION, assertId, subjects, type GpuStateRecord, type GpuStatusEvent } from '../schemas/index.ts';
import { servePlacement, type PlacedActor, type PlacedServiceSpec, type PlacementHost } from './fleet-placement.ts';
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
}

export interface RunningHost {
  hostId: string;
  gpuIds: string[];
  devices: GpuDevice[];
  gpuActors: Actor<typeof gpuMachine>[];
  stop(): Promise<void>;
}

interface GpuParts {
  gpuId: string;
  device: GpuDevice;
  gpu: Actor<typeof gpuMachine>;
  /** The inference and training actors on this GPU now; the fleet's placements add and remove them. */
  placement: PlacementHost;
  jobIds: string[];
  /** Starts passing the device's workload news (a service's process down or back) to the GPU actor, once it runs. */
  watchWorkloads: () => void;
}

/**
 * Runs one host: per GPU a GPU actor, an inference actor per service and a training actor per job, each
 * on its own subjects; they reach each other only through the bus.
 */
export async function startHost(o: HostOptions): Promise<RunningHost> {
  const hostId = assertId('host', o.hostId);
  const policy = o.policy ?? o.workloads.policy ?? 'gpucolo';
  const reportPeriodMs = o.reportPeriodMs ?? 200;
  const log = o.log ?? (() => {});
  const bus = o.bus;
  const parts: GpuParts[] = [];
  const gpuIds = Array.from({ length: o.gpus }, (_, i) => `gpu${i}`);
  const unix = () => Date.now();
  // Release commands in flight when the GPU actors stop: awaited before the connection closes.
  const releases: Promise<void>[] = [];
  const savers: StateSaver[] = [];

  // A built-in name or a profile file: read once, shared by every simulated GPU (the model never changes it).
  let simProfile: GpuProfile | undefined;
  const simDevice = (index: number, gpuId: string, w: ReturnType<typeof workloadFor>, initial: Knobs): GpuDevice => {
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

  const buildGpu = (index: number, restored?: StoredState): GpuParts => {
    const gpuId = gpuIds[index]!;
    const w = workloadFor(o.workloads, index);
    const r = restored?.record;
    const gpuPolicy = r && isPolicyName(r.policy) ? (r.policy as PolicyName) : policy;
    const initial = r?.knobs ?? policyFor(gpuPolicy, {}).initialKnobs();
    const telemetry = new GpuTelemetry(hostId, gpuId);
    const device: GpuDevice = o.makeDevice ? o.makeDevice(index, gpuId, initial) : simDevice(index, gpuId, w, initial);
    const fixedShare = device.fixedMpsSharePct;
    // A device whose own machinery fails (an MPS daemon in fault, hung or gone) says so as a safety event.
    device.onHealth?.((h) => {
      bus.publish(subjects.gpuSafety(hostId, gpuId), { v: SCHEMA_VERSION, type: 'gpu.safety', host: hostId, gpu: gpuId, tMs: device.now(), unixMs: unix(), condition: h.state === 'ok' ? 'device-restored' : 'device-fault', detail: h.detail });
    });

    const makeInference = (s: PlacedServiceSpec): PlacedActor => {
      const subject = subjects.inferenceWindow(hostId, gpuId, s.id);
      const machine = inferenceMachine.provide({
        actions: {
          sample: ({ self }) => {
            // In flight first: once it reads 0 on a drained service, no completion can follow the take.
            const inFlight = device.inFlight?.(s.id);
            const { completions, arrivals } = device.takeCompletions(s.id);
            recordLatencies(hostId, gpuId, s.id, completions.map((c) => c.latencyMs));
            self.send({ type: 'SAMPLES', tMs: device.now(), completions, arrivals, ...(inFlight !== undefined ? { inFlight } : {}) });
          },
          report: ({ context }, { report }) => {
            bus.publish(subject, { v: SCHEMA_VERSION, type: 'inference.window', host: hostId, gpu: gpuId, serviceId: context.serviceId, ...report },
              telemetry.windowContext(context.serviceId, subject, { ...report, sloMs: context.sloMs }));
          },
          applyLoad: (_a, { rateRps, batch }) => {
            if (rateRps !== undefined) device.setArrivalRate(s.id, rateRps);
            if (batch !== undefined) { device.setBatch(s.id, batch); s.batch = batch; }
          },
        },
      });
      const actor = createActor(machine, { input: { host: hostId, gpu: gpuId, serviceId: s.id, sloMs: r?.sloMs[s.id] ?? s.sloMs, rateRps: s.rateRps, periodMs: reportPeriodMs }, clock: o.clock.xstate });
      const sub = bus.serve<'inference.command'>(subjects.inferenceCommand(hostId, gpuId, s.id), ({ message: m }) => {
        if (m.action === 'set-rate' && m.rateRps !== undefined) actor.send({ type: 'SET_RATE', rateRps: m.rateRps });
        else if (m.action === 'scale-rate' && m.scale !== undefined) actor.send({ type: 'SCALE_RATE', scale: m.scale });
        else if (m.action === 'set-batch' && m.batch !== undefined) actor.send({ type: 'SET_BATCH', batch: m.batch });
        else return { ok: false, error: `${m.action} needs its value (rateRps, scale or batch)` };
        return { ok: true, state: { rateRps: actor.getSnapshot().context.rateRps } };
      });
      return { actor, sub };
    };
    const services = new Map(w.services.map((s) => {
      const spec = { ...s };
      return [s.id, { ...makeInference(spec), spec }] as const;
    }));

    const makeTraining = (jobId: string, baseIterations: number): PlacedActor => {
      const t = { id: jobId };
      const machine = trainingMachine.provide({
        actions: {
          sample: ({ self }) => {
            const st = device.trainingStatus(t.id);
            // A job restarted from a checkpoint counts from the checkpoint's iterations.
            self.send({ type: 'STATUS', tMs: device.now(), iterations: baseIterations + st.iterations, state: st.state, mpsSharePct: st.mpsSharePct, pacing: st.pacing });
          },
          checkpoint: () => device.setTrainingRunning(t.id, false),
          report: ({ context }, { report }) => {
            bus.publish(subjects.trainingProgress(hostId, gpuId, t.id), { v: SCHEMA_VERSION, type: 'training.progress', host: hostId, gpu: gpuId, jobId: context.jobId, ...report });
          },
          apply: (_a, { command }) => applyTraining(device, t.id, command),
          release: () => {
            // Never leave a job paused: no sleep, and running.
            device.setPacing(t.id, { mode: 'duty', duty: 0, periodMs: 50 });
            device.setTrainingRunning(t.id, true);
          },
        },
      });
      const actor = createActor(machine, { input: { host: hostId, gpu: gpuId, jobId: t.id, periodMs: reportPeriodMs }, clock: o.clock.xstate });
      const sub = bus.serve<'training.command'>(subjects.trainingCommand(hostId, gpuId, t.id), ({ message: m }) => {
        if (m.action === 'set-pacing' && m.pacing) actor.send({ type: 'SET_PACING', pacing: m.pacing });
        else if (m.action === 'set-mps-share' && m.mpsSharePct !== undefined) actor.send({ type: 'SET_MPS_SHARE', mpsSharePct: m.mpsSharePct });
        else if (m.action === 'set-running' && m.running !== undefined) actor.send({ type: 'SET_RUNNING', running: m.running });
        else return { ok: false, error: `${m.action} needs its value (pacing, mpsSharePct or running)` };
        const st = device.trainingStatus(t.id);
        return { ok: true, state: { mpsSharePct: st.mpsSharePct, pacing: st.pacing, state: st.state } };
      });
      return { actor, sub };
    };
    const trainings = new Map(w.trainings.map((t) => [t.id, { ...makeTraining(t.id, 0), baseIterations: 0 }] as const));

    const jobIds = w.trainings.map((t) => t.id);
    const gpu = createActor(
      gpuMachine.provide({
        actions: {
          actuate: ({ context }, { tier, old, knobs, decisions }) => {
            // One span per knob change; its decision event carries its context, its command is its child.
            const step = telemetry.step(tier, context.policyName, decisions, device.now());
            for (const decision of decisions) {
              const ctx = step.contextFor(decision.knob);
              bus.publish(subjects.gpuDecision(hostId, gpuId), {
                v: SCHEMA_VERSION, type: 'gpu.decision', host: hostId, gpu: gpuId, tMs: device.now(), unixMs: unix(),
                policy: context.policyName, tier: tier === 'safety' ? 'safety' : decision.tier, knob: decision.knob,
                oldValue: decision.oldValue, newValue: decision.newValue, reason: decision.reason,
                terms: finiteTerms(decision.terms),
                ...(decision.drivingServiceId ? { drivingServiceId: decision.drivingServiceId } : {}),
              }, ctx);
            }
            const sends = jobIds.map((jobId) => actuateJob(bus, hostId, gpuId, jobId, tier === 'start' ? undefined : old, knobs, step, log));
            void Promise.all(sends).finally(() => step.end());
          },
          publishStatus: ({ context, self }) => {
            const mode = self.getSnapshot().matches({ running: { mode: 'safe' } }) ? 'safe' : 'controlling';
            const status = statusEvent(context, mode, device.now(), unix());
            telemetry.status(status);
            bus.publish(subjects.gpuStatus(hostId, gpuId), status);
          },
          publishSafety: (_a, { condition, detail }) => {
            bus.publish(subjects.gpuSafety(hostId, gpuId), { v: SCHEMA_VERSION, type: 'gpu.safety', host: hostId, gpu: gpuId, tMs: device.now(), unixMs: unix(), condition, detail });
          },
          readClock: ({ self }) => {
            self.send({ type: 'CLOCK', tMs: device.now() });
          },
          releaseTraining: ({ context }) => {
            // Sleep off and running; the MPS share is sent as it is (unchanged: no restart).
            const released: Knobs = { ...context.knobs, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: true };
            for (const jobId of jobIds) releases.push(actuateJob(bus, hostId, gpuId, jobId, undefined, released, otelContext.active(), log));
          },
        },
      }),
      {
        input: {
          host: hostId, gpu: gpuId, policy: gpuPolicy,
          // A share the device holds for good (a job that cannot checkpoint) is the share the controller starts from.
          ...(fixedShare !== undefined ? { knobs: { ...(r?.knobs ?? initial), mpsSharePct: fixedShare }, mpsShareFixed: true } : r ? { knobs: r.knobs } : {}),
        },
        clock: o.clock.xstate,
      },
    );
    if (fixedShare !== undefined) log(`${gpuId}: MPS share fixed at ${fixedShare}% (a training job that cannot checkpoint): the outer tier is off, the inner tier paces training`);
    // A service whose process died is a safety matter: the GPU actor holds training at its safe duty until it is back.
    const watchWorkloads = () => device.onWorkload?.((e) => {
      gpu.send(e.state === 'down' ? { type: 'WORKLOAD_DOWN', serviceId: e.serviceId, detail: e.detail } : { type: 'WORKLOAD_UP', serviceId: e.serviceId });
    });
    if (o.stateStore) savers.push(keepStateSaved(gpu, new StateSaver(o.stateStore, log)));
    bus.subscribe<'inference.window'>(subjects.inferenceWindow(hostId, gpuId, '*'), ({ message, traceContext }) => {
      const { v: _v, type: _t, host: _h, gpu: _g, serviceId, ...report } = message;
      // A drained service's last window can land after it left: it no longer concerns this GPU's controller.
      if (!services.has(serviceId)) return;
      telemetry.onWindow(serviceId, report, traceContext);
      gpu.send({ type: 'WINDOW', serviceId, report });
    });
    bus.subscribe<'training.progress'>(subjects.trainingProgress(hostId, gpuId, '*'), ({ message }) => {
      const { v: _v, type: _t, host: _h, gpu: _g, jobId, ...report } = message;
      if (!trainings.has(jobId)) return;
      telemetry.onProgress(jobId, report.itersPerSec);
      gpu.send({ type: 'PROGRESS', jobId, report });
    });
    bus.serve<'gpu.command'>(subjects.gpuCommand(hostId, gpuId), ({ message: m }) => {
      const c = gpu.getSnapshot().context;
      if (m.action === 'set-slo') {
        if (m.sloMs === undefined) return { ok: false, error: 'set-slo needs sloMs' };
        gpu.send({ type: 'SET_SLO', sloMs: m.sloMs, ...(m.serviceId ? { serviceId: m.serviceId } : {}) });
        for (const [id, a] of services) if (!m.serviceId || id === m.serviceId) a.actor.send({ type: 'SET_SLO', sloMs: m.sloMs });
      } else if (m.action === 'set-policy') {
        const name = m.policy as PolicyName;
        if (!m.policy || !isPolicyName(name)) return { ok: false, error: `unknown policy ${JSON.stringify(m.policy)}; known: ${POLICY_NAMES.join(', ')}` };
        gpu.send({ type: 'SET_POLICY', policy: name });
      }
      const now = gpu.getSnapshot().context;
      return { ok: true, state: { policy: now.policyName, knobs: now.knobs, mpsChanges: c.mpsChanges, sleepChanges: c.sleepChanges } };
    });
    const placement: PlacementHost = {
      hostId, gpuId, device, services, trainings, makeInference, makeTraining,
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
    servePlacement(bus, placement);
    return { gpuId, device, gpu, placement, jobIds, watchWorkloads };
  };

  const host = createActor(
    hostMachine.provide({
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
          for (let i = 0; i < o.gpus; i++) parts.push(buildGpu(i, states[i]));
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
          await Promise.race([Promise.allSettled(releases), new Promise((r) => setTimeout(r, 3000))]);
          for (const p of parts) for (const a of [...p.placement.services.values(), ...p.placement.trainings.values()]) a.actor.send({ type: 'STOP' });
          await bus.nc.flush().catch(() => undefined);
          await Promise.all(savers.map((s) => s.flush()));
          for (const p of parts) await p.device.close();
        }),
      },
    }),
    { input: { host: hostId, gpus: gpuIds, backend: o.backendLabel ?? `sim:${o.gpus}` } },
  );
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
  bus.onReconnect(() => {
    const active = parts.filter((p) => p.gpu.getSnapshot().status === 'active');
    for (const p of active) {
      const knobs = p.gpu.getSnapshot().context.knobs;
      for (const jobId of p.jobIds) void actuateJob(bus, hostId, p.gpuId, jobId, undefined, knobs, otelContext.active(), log);
    }
    log(`host ${hostId}: bus reconnected; knobs re-sent to the training jobs of ${active.length} GPU(s)`);
  });

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
      await bus.nc.flush().catch(() => undefined);
    },
  };
}

/** Reads a GPU's stored state; a failure to read is logged and the GPU starts afresh. */
async function loadState(store: GpuStateStore, host: string, gpu: string, connectedAtMs: number, log: (l: string) => void): Promise<StoredState | undefined> {
  try {
    const got = await store.load(host, gpu, (why) => log(`state: ${why}; starting afresh`));
    if (got) {
      const { record: r, revision } = got;
      // How long a restarted runner took to get its state back: from its bus connection, and from process start.
      const sinceConnectMs = Math.round(performance.now() - connectedAtMs);
      log(`host ${host}: ${gpu} state restored from KV revision ${revision} (policy ${r.policy}, mps ${r.knobs.mpsSharePct}%, pacing ${JSON.stringify(r.knobs.pacing)}, SLO ${JSON.stringify(r.sloMs)}) ${sinceConnectMs} ms after the bus connected, ${Math.round(performance.now())} ms after process start`);
    }
    return got;
  } catch (err) {
    log(`state: cannot read ${host}/${gpu} from KV: ${(err as Error).message}; starting afresh`);
    return undefined;
  }
}

/** Saves a GPU actor's policy, SLOs and controller knobs whenever they change. */
function keepStateSaved(gpu: Actor<typeof gpuMachine>, saver: StateSaver): StateSaver {
  let last = '';
  gpu.subscribe((snap) => {
    const c = snap.context;
    // Nothing to say before the first latency window names the services (and their SLOs).
    if (Object.keys(c.services).length === 0) return;
    const sloMs: Record<string, number> = {};
    for (const [id, sv] of Object.entries(c.services)) sloMs[id] = sv.sloMs;
    // In the safe setting the controller's own knobs are saved: the safe duty is re-derived from telemetry.
    const knobs = c.safe && c.preSafeKnobs ? c.preSafeKnobs : c.knobs;
    const key = JSON.stringify([c.policyName, knobs, sloMs]);
    if (key === last) return;
    last = key;
    const record: GpuStateRecord = { v: SCHEMA_VERSION, host: c.host, gpu: c.gpu, policy: c.policyName, knobs, sloMs, savedUnixMs: Date.now() };
    saver.schedule(record);
  });
  return saver;
}

function finiteTerms(terms: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(terms)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

function statusEvent(c: GpuContext, state: string, tMs: number, unixMs: number): GpuStatusEvent {
  return {
    v: SCHEMA_VERSION, type: 'gpu.status', host: c.host, gpu: c.gpu, tMs, unixMs, policy: c.policyName, state,
    services: Object.entries(c.services).map(([serviceId, s]) => ({
      serviceId, sloMs: s.sloMs, p99Ms: s.last?.p99Ms ?? 0, meanMs: s.last?.meanMs ?? 0, rateRps: s.last?.rateRps ?? 0,
      runP99Ms: s.last?.runP99Ms ?? 0, sloWindows: s.last?.sloWindows ?? 0, sloWindowsMet: s.last?.sloWindowsMet ?? 0,
    })),
    trainings: Object.entries(c.trainings).map(([jobId, t]) => ({ jobId, itersPerSec: t.itersPerSec, iterations: t.iterations, state: t.state })),
    mpsSharePct: c.knobs.mpsSharePct, pacing: c.knobs.pacing, trainingRunning: c.knobs.trainingRunning,
    mpsChanges: c.mpsChanges, sleepChanges: c.sleepChanges,
  };
}

function applyTraining(device: GpuDevice, jobId: string, c: TrainingCommandEvent): void {
  if (c.type === 'SET_PACING') device.setPacing(jobId, c.pacing);
  // A share already in force needs no restart (commands are idempotent).
  else if (c.type === 'SET_MPS_SHARE') { if (device.trainingStatus(jobId).mpsSharePct !== c.mpsSharePct) device.setMpsShare(jobId, c.mpsSharePct); }
  else device.setTrainingRunning(jobId, c.running);
}

/** Sends one training job the knobs that changed (all of them when `old` is undefined), as commands over the bus. */
async function actuateJob(
  bus: Bus, host: string, gpu: string, jobId: string, old: Knobs | undefined, knobs: Knobs, parent: Context | TracedStep, log: (l: string) => void,
): Promise<void> {
  const subject = subjects.trainingCommand(host, gpu, jobId);
  const cmds: CommandBody<'training.command'>[] = [];
  const base = { type: 'training.command' as const };
  if (!old || old.trainingRunning !== knobs.trainingRunning) cmds.push({ ...base, action: 'set-running', running: knobs.trainingRunning });
  if (!old || old.mpsSharePct !== knobs.mpsSharePct) cmds.push({ ...base, action: 'set-mps-share', mpsSharePct: knobs.mpsSharePct });
  if (!old || !samePacing(old.pacing, knobs.pacing)) {
    cmds.push({ ...base, action: 'set-pacing', pacing: knobs.pacing });
  }
  for (const body of cmds) {
    const ctx = 'contextFor' in parent ? parent.contextFor(body.action) : parent;
    const span = commandSpan(SPAN.actuatePrefix, subject, body.action, { 'gpucolo.host': host, 'gpucolo.gpu': gpu, 'gpucolo.job': jobId }, ctx);
    try {
      const reply = await bus.request<'training.command'>(subject, body, { timeoutMs: 2000, ctx: trace.setSpan(ctx, span) });
      if (!reply.ok) throw new Error(reply.error ?? 'refused');
    } catch (err) {
      failSpan(span, err);
      log(`actuation ${subject} ${body.action} failed: ${(err as Error).message}`);
    } finally {
      span.end();
    }
  }
}
