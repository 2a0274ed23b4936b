import type { Subscription } from '@nats-io/nats-core';
import type { Bus, CommandOutcome } from '../../bus/index.ts';
import type { Knobs } from '../../control/index.ts';
import type { GpuDevice } from '../../gpu/index.ts';
import { subjects, type PlacementCommand } from '../../schemas/index.ts';

/** What a service needs to start on a GPU. */
export interface PlacedServiceSpec {
  id: string;
  sloMs: number;
  batch: number;
  rateRps: number;
}

/** The part of an xstate actor the placement handler uses (method syntax: any actor's events fit). */
export interface WorkloadActor {
  start(): unknown;
  send(event: { type: string } & Record<string, unknown>): void;
  getSnapshot(): { status: string; context: unknown };
  subscribe(observer: (snapshot: { status: string }) => void): { unsubscribe(): void };
}

/** An actor the host made for a workload, and the command subscription that goes with it. */
export interface PlacedActor {
  actor: WorkloadActor;
  sub: Subscription;
}

/** A service placed on a GPU: its actor, its command subscription, what it was started with. */
export type PlacedService = PlacedActor & { spec: PlacedServiceSpec };

/** The host runner's side of one GPU, as the placement handler needs it. */
export interface PlacementHost {
  hostId: string;
  gpuId: string;
  device: GpuDevice;
  /** The services and jobs running here, by id (the handler adds and removes entries). */
  services: Map<string, PlacedService>;
  trainings: Map<string, PlacedActor & { baseIterations: number }>;
  /** Builds (does not start) an inference actor for a service on this GPU. */
  makeInference(spec: PlacedServiceSpec): PlacedActor;
  /** Builds (does not start) a training actor; its reported iterations start at `baseIterations`. */
  makeTraining(jobId: string, baseIterations: number): PlacedActor;
  /** The knobs the GPU actor holds now: a job placed here starts under them. */
  knobs(): Knobs;
  /** Tell the GPU actor (and the actuation list) that a workload came or went. */
  onServiceRemoved(serviceId: string): void;
  onTrainingAdded(jobId: string): void;
  onTrainingRemoved(jobId: string): void;
  /** Wall ms to wait for a drain before giving up (default 10 s). */
  drainTimeoutMs?: number;
}

function whenDone(actor: WorkloadActor, timeoutMs: number): Promise<boolean> {
  if (actor.getSnapshot().status === 'done') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { sub.unsubscribe(); resolve(false); }, timeoutMs);
    const sub = actor.subscribe((s) => {
      if (s.status === 'done') { clearTimeout(timer); sub.unsubscribe(); resolve(true); }
    });
  });
}

/** Removes a draining service from this GPU once its actor is done, whenever that is (once, if it is still the one listed). */
function leaveWhenDone(h: PlacementHost, serviceId: string, s: PlacedService): Promise<void> {
  const leave = () => {
    if (h.services.get(serviceId) !== s) return;
    s.sub.unsubscribe();
    h.services.delete(serviceId);
    h.onServiceRemoved(serviceId);
  };
  if (s.actor.getSnapshot().status === 'done') { leave(); return Promise.resolve(); }
  return new Promise((resolve) => {
    const sub = s.actor.subscribe((snap) => { if (snap.status === 'done') { sub.unsubscribe(); leave(); resolve(); } });
  });
}

/**
 * Serves the fleet actor's placement commands for one GPU: `describe`, `start-service` (a new inference
 * actor, serving at once), `drain-service` (no new requests; replies once every request in flight has
 * finished and been reported), `start-training` (from a checkpoint, under the GPU's knobs) and
 * `checkpoint-training` (stopped, not paused; replies with the iterations to resume from; refused for a job
 * that cannot checkpoint). A repeated command id gets the first reply (the bus's idempotency cache); a repeated
 * start of a present id is a no-op.
 */
export function servePlacement(bus: Bus, h: PlacementHost): Subscription {
  const describe = () => ({
    services: [...h.services.values()].map((s) => ({ ...s.spec, rateRps: (s.actor.getSnapshot().context as { rateRps: number }).rateRps })),
    trainings: [...h.trainings.entries()].map(([id, t]) => ({ id, iterations: t.baseIterations + h.device.trainingStatus(id).iterations })),
  });
  return bus.serve<'placement.command'>(subjects.placementCommand(h.hostId, h.gpuId), async ({ message: m }): Promise<CommandOutcome> => {
    switch (m.action) {
      case 'describe':
        return { ok: true, state: describe() };
      case 'start-service':
        return startService(h, m, describe);
      case 'drain-service':
        return drainService(h, m, describe);
      case 'start-training':
        return startTraining(h, m, describe);
      case 'checkpoint-training':
        return checkpointTraining(h, m, describe);
    }
  });
}

type Describe = () => Record<string, unknown>;

function startService(h: PlacementHost, m: PlacementCommand, describe: Describe): CommandOutcome {
  if (!m.serviceId || m.sloMs === undefined || m.batch === undefined || m.rateRps === undefined) {
    return { ok: false, error: 'start-service needs serviceId, sloMs, batch and rateRps' };
  }
  if (!h.device.addService) return { ok: false, error: `GPU ${h.hostId}/${h.gpuId}: this backend cannot place services at run time` };
  if (h.services.has(m.serviceId)) return { ok: true, state: describe() };
  const spec: PlacedServiceSpec = { id: m.serviceId, sloMs: m.sloMs, batch: m.batch, rateRps: m.rateRps };
  h.device.addService({ id: spec.id, batch: spec.batch, rateRps: spec.rateRps });
  const placed = h.makeInference(spec);
  h.services.set(spec.id, { ...placed, spec });
  placed.actor.start();
  return { ok: true, state: describe() };
}

async function drainService(h: PlacementHost, m: PlacementCommand, describe: Describe): Promise<CommandOutcome> {
  const s = m.serviceId ? h.services.get(m.serviceId) : undefined;
  if (!m.serviceId) return { ok: false, error: 'drain-service needs serviceId' };
  if (!s) return { ok: true, state: describe() }; // already drained: idempotent
  s.actor.send({ type: 'DRAIN' });
  // The service leaves this GPU once its last requests are done, also when that is after the reply below has
  // stopped waiting: a drained service must not stay listed here (the fleet would read it running twice).
  const left = leaveWhenDone(h, m.serviceId, s);
  const drained = await whenDone(s.actor, h.drainTimeoutMs ?? 10_000);
  if (!drained) return { ok: false, error: `service ${m.serviceId} still has requests in flight after ${h.drainTimeoutMs ?? 10_000} ms (it takes no new ones, and leaves this GPU once they are done)` };
  await left;
  return { ok: true, state: describe() };
}

function startTraining(h: PlacementHost, m: PlacementCommand, describe: Describe): CommandOutcome {
  if (!m.jobId) return { ok: false, error: 'start-training needs jobId' };
  if (!h.device.addTraining) return { ok: false, error: `GPU ${h.hostId}/${h.gpuId}: this backend cannot place training jobs at run time` };
  if (h.trainings.has(m.jobId)) return { ok: true, state: describe() };
  const knobs = h.knobs();
  // The job restarts from its checkpoint under the knobs this GPU's controller holds now.
  h.device.addTraining({ id: m.jobId, mpsSharePct: knobs.mpsSharePct, pacing: knobs.pacing });
  const baseIterations = (m.iterations ?? 0) - h.device.trainingStatus(m.jobId).iterations;
  const placed = h.makeTraining(m.jobId, baseIterations);
  h.trainings.set(m.jobId, { ...placed, baseIterations });
  h.device.setTrainingRunning(m.jobId, knobs.trainingRunning);
  placed.actor.start();
  h.onTrainingAdded(m.jobId);
  return { ok: true, state: describe() };
}

async function checkpointTraining(h: PlacementHost, m: PlacementCommand, describe: Describe): Promise<CommandOutcome> {
  if (!m.jobId) return { ok: false, error: 'checkpoint-training needs jobId' };
  const t = h.trainings.get(m.jobId);
  if (!t) return { ok: true, state: describe() };
  // Stopping it would lose its work (and it would not stop: it is held at the duty cap), so it is not moved.
  if (h.device.canCheckpoint?.(m.jobId) === false) return { ok: false, error: `training ${m.jobId} cannot checkpoint: it is not moved` };
  // Out of the map first: a progress report still in flight is then dropped, not taken for a live job.
  h.trainings.delete(m.jobId);
  h.onTrainingRemoved(m.jobId);
  t.actor.send({ type: 'CHECKPOINT' });
  await whenDone(t.actor, 5000);
  const iterations = t.baseIterations + h.device.trainingStatus(m.jobId).iterations;
  t.sub.unsubscribe();
  return { ok: true, state: { ...describe(), checkpoint: { jobId: m.jobId, iterations } } };
}
