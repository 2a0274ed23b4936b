// The actors of one GPU: an inference actor per service, a training actor per job, and the GPU actor.
// Each gets its I/O (the device, the bus, telemetry) through provide(), from a GpuWiring.
import { context as otelContext } from '@opentelemetry/api';
import { createActor, type Actor } from 'xstate';
import { gpuMachine, inferenceMachine, trainingMachine, type ScaledClock } from '../../actors/index.ts';
import type { Bus } from '../../bus/index.ts';
import { GPUCOLO_DEFAULTS, type Knobs, type Pacing, type PolicyName } from '../../control/index.ts';
import type { GpuDevice } from '../../gpu/index.ts';
import { recordLatencies, type GpuTelemetry } from '../../observability/index.ts';
import { SCHEMA_VERSION, subjects } from '../../schemas/index.ts';
import { actuateJob, applyTraining, finiteTerms, statusEvent } from './actuation.ts';
import type { PlacedActor, PlacedServiceSpec } from './fleet-placement.ts';

/** The pacing a job is released to (the controller gone, or a safety release): no sleep, at the default period. */
const RELEASED_PACING: Pacing = { mode: 'duty', duty: 0, periodMs: GPUCOLO_DEFAULTS.dutyPeriodMs };

/** What every part of one GPU's wiring needs: who it is, its device, and the host's I/O. */
export interface GpuWiring {
  hostId: string;
  gpuId: string;
  device: GpuDevice;
  telemetry: GpuTelemetry;
  bus: Bus;
  clock: ScaledClock;
  reportPeriodMs: number;
  log: (line: string) => void;
  /** Wall clock (unix ms) for events. */
  unix: () => number;
  /** SLOs restored from the state store, by service id (they win over the workloads file's). */
  restoredSloMs?: Record<string, number>;
  /** Wall ms a drain-service command waits before it replies (PlacementHost.drainTimeoutMs). */
  drainTimeoutMs?: number;
}

/** Builds (does not start) the inference actor of a service, and serves its inference.command subject. */
export function makeInference(w: GpuWiring, s: PlacedServiceSpec): PlacedActor {
  const { hostId, gpuId, device, bus } = w;
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
          w.telemetry.windowContext(context.serviceId, subject, { ...report, sloMs: context.sloMs }));
      },
      applyLoad: (_a, { rateRps, batch }) => {
        if (rateRps !== undefined) device.setArrivalRate(s.id, rateRps);
        if (batch !== undefined) { device.setBatch(s.id, batch); s.batch = batch; }
      },
    },
  });
  const input = { host: hostId, gpu: gpuId, serviceId: s.id, sloMs: w.restoredSloMs?.[s.id] ?? s.sloMs, rateRps: s.rateRps, periodMs: w.reportPeriodMs };
  const actor = createActor(machine, { input, clock: w.clock.xstate });
  const sub = bus.serve<'inference.command'>(subjects.inferenceCommand(hostId, gpuId, s.id), ({ message: m }) => {
    if (m.action === 'set-rate' && m.rateRps !== undefined) actor.send({ type: 'SET_RATE', rateRps: m.rateRps });
    else if (m.action === 'scale-rate' && m.scale !== undefined) actor.send({ type: 'SCALE_RATE', scale: m.scale });
    else if (m.action === 'set-batch' && m.batch !== undefined) actor.send({ type: 'SET_BATCH', batch: m.batch });
    else return { ok: false, error: `${m.action} needs its value (rateRps, scale or batch)` };
    return { ok: true, state: { rateRps: actor.getSnapshot().context.rateRps } };
  });
  return { actor, sub };
}

/** Builds (does not start) the training actor of a job, and serves its training.command subject. */
export function makeTraining(w: GpuWiring, jobId: string, baseIterations: number): PlacedActor {
  const { hostId, gpuId, device, bus } = w;
  const machine = trainingMachine.provide({
    actions: {
      sample: ({ self }) => {
        const st = device.trainingStatus(jobId);
        // A job restarted from a checkpoint counts from the checkpoint's iterations.
        self.send({ type: 'STATUS', tMs: device.now(), iterations: baseIterations + st.iterations, state: st.state, mpsSharePct: st.mpsSharePct, pacing: st.pacing });
      },
      checkpoint: () => device.setTrainingRunning(jobId, false),
      report: ({ context }, { report }) => {
        bus.publish(subjects.trainingProgress(hostId, gpuId, jobId), { v: SCHEMA_VERSION, type: 'training.progress', host: hostId, gpu: gpuId, jobId: context.jobId, ...report });
      },
      apply: (_a, { command }) => applyTraining(device, jobId, command),
      release: () => {
        // Never leave a job paused: no sleep, and running.
        device.setPacing(jobId, RELEASED_PACING);
        device.setTrainingRunning(jobId, true);
      },
    },
  });
  const actor = createActor(machine, { input: { host: hostId, gpu: gpuId, jobId, periodMs: w.reportPeriodMs }, clock: w.clock.xstate });
  const sub = bus.serve<'training.command'>(subjects.trainingCommand(hostId, gpuId, jobId), ({ message: m }) => {
    if (m.action === 'set-pacing' && m.pacing) actor.send({ type: 'SET_PACING', pacing: m.pacing });
    else if (m.action === 'set-mps-share' && m.mpsSharePct !== undefined) actor.send({ type: 'SET_MPS_SHARE', mpsSharePct: m.mpsSharePct });
    else if (m.action === 'set-running' && m.running !== undefined) actor.send({ type: 'SET_RUNNING', running: m.running });
    else return { ok: false, error: `${m.action} needs its value (pacing, mpsSharePct or running)` };
    const st = device.trainingStatus(jobId);
    return { ok: true, state: { mpsSharePct: st.mpsSharePct, pacing: st.pacing, state: st.state } };
  });
  return { actor, sub };
}

/** How the GPU actor starts: its policy, and the knobs it starts from (restored, or a share the device fixes). */
export interface GpuActorStart {
  policy: PolicyName;
  /** Knobs restored from the state store. */
  restoredKnobs?: Knobs;
  /** The policy's initial knobs (what training was launched with). */
  initial: Knobs;
  /** The training jobs this GPU actuates now (the placement handler adds and removes ids). */
  jobIds: string[];
  /** Release commands in flight when the GPU actor stops (the host awaits them). */
  releases: Promise<void>[];
}

/** Builds (does not start) the GPU actor: decisions, status and safety events, and actuation over the bus. */
export function makeGpuActor(w: GpuWiring, start: GpuActorStart): Actor<typeof gpuMachine> {
  const { hostId, gpuId, device, bus, telemetry, unix, log } = w;
  const { jobIds } = start;
  const fixedShare = device.fixedMpsSharePct;
  const machine = gpuMachine.provide({
    actions: {
      actuate: ({ context }, { tier, old, knobs, decisions }) => {
        // One span per knob change; its decision event carries its context, its command is its child.
        const step = telemetry.step(tier, context.policyName, decisions, device.now());
        for (const decision of decisions) {
          bus.publish(subjects.gpuDecision(hostId, gpuId), {
            v: SCHEMA_VERSION, type: 'gpu.decision', host: hostId, gpu: gpuId, tMs: device.now(), unixMs: unix(),
            policy: context.policyName, tier: tier === 'safety' ? 'safety' : decision.tier, knob: decision.knob,
            oldValue: decision.oldValue, newValue: decision.newValue, reason: decision.reason,
            terms: finiteTerms(decision.terms),
            ...(decision.drivingServiceId ? { drivingServiceId: decision.drivingServiceId } : {}),
          }, step.contextFor(decision.knob));
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
        const released: Knobs = { ...context.knobs, pacing: RELEASED_PACING, trainingRunning: true };
        for (const jobId of jobIds) start.releases.push(actuateJob(bus, hostId, gpuId, jobId, undefined, released, otelContext.active(), log));
      },
    },
  });
  const r = start.restoredKnobs;
  const input = {
    host: hostId, gpu: gpuId, policy: start.policy,
    // A share the device holds for good (a job that cannot checkpoint) is the share the controller starts from.
    ...(fixedShare !== undefined ? { knobs: { ...(r ?? start.initial), mpsSharePct: fixedShare }, mpsShareFixed: true } : r ? { knobs: r } : {}),
  };
  const actor = createActor(machine, { input, clock: w.clock.xstate });
  if (fixedShare !== undefined) log(`${gpuId}: MPS share fixed at ${fixedShare}% (a training job that cannot checkpoint): the outer tier is off, the inner tier paces training`);
  return actor;
}
