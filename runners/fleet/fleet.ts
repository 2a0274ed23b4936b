import { context as otelContext, trace, type Context } from '@opentelemetry/api';
import { createActor, type Actor } from 'xstate';
import { fleetMachine, type FleetActorInput, type FleetPlanSummary, type ScaledClock } from '../../actors/index.ts';
import type { Bus, CommandBody } from '../../bus/index.ts';
import type { Move } from '../../control/index.ts';
import { commandSpan, failSpan, fleetPlanSpan, recordFleetPlan, SPAN } from '../../observability/index.ts';
import { SCHEMA_VERSION, assertId, subjects, type CommandReply } from '../../schemas/index.ts';
import { FleetLease } from './fleet-lease.ts';

export interface FleetOptions extends Omit<FleetActorInput, 'fleetId'> {
  fleetId: string;
  bus: Bus;
  /** Plan rounds and dwell times run on this clock (device time: the hosts' --speed). */
  clock: ScaledClock;
  /** Lease time-to-live, wall ms (default 3000): a dead leader is replaced within about this. */
  leaseTtlMs?: number;
  /** Lease renew / check period, wall ms (default ttl / 6). */
  leaseTickMs?: number;
  /** Placement command timeout, wall ms (default 15 s: a drain waits for the requests in flight). */
  commandTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface FleetStats {
  fleetId: string;
  leading: boolean;
  rounds: number;
  plans: number;
  movesIssued: number;
  movesDone: number;
  movesFailed: number;
  gpusKnown: number;
  leaderChanges: number;
  /** Planner time per round that planned, ms (mean and max), and how many such rounds. */
  planMsMean: number;
  planMsMax: number;
  plannedRounds: number;
}

export interface RunningFleet {
  actor: Actor<typeof fleetMachine>;
  lease: FleetLease;
  stats(): FleetStats;
  stop(): Promise<void>;
}

/**
 * Runs one fleet process: the fleet actor fed by every GPU status on the bus, the KV lease that decides
 * whether it leads, and the actuation of its plans as placement commands to the host runners, each a
 * child span of the plan's `gpucolo.fleet.plan` span (trace context in the NATS headers).
 */
export async function startFleet(o: FleetOptions): Promise<RunningFleet> {
  const fleetId = assertId('fleet', o.fleetId);
  const bus = o.bus;
  const log = o.log ?? (() => {});
  const ttlMs = o.leaseTtlMs ?? 3000;
  const lease = new FleetLease(bus.nc, fleetId, ttlMs);
  const timeoutMs = o.commandTimeoutMs ?? 15_000;
  let leaderChanges = 0;
  /** Plans whose moves are still running: a stopping leader finishes them (so no service is left half-moved). */
  const inflightPlans = new Set<Promise<unknown>>();
  let actor!: Actor<typeof fleetMachine>;

  const request = (host: string, gpu: string, body: Omit<CommandBody<'placement.command'>, 'type'>, ctx: Context, planId: string): Promise<CommandReply> => {
    const subject = subjects.placementCommand(host, gpu);
    const span = commandSpan(SPAN.commandPrefix, subject, body.action, { 'gpucolo.host': host, 'gpucolo.gpu': gpu, 'gpucolo.fleet.plan_id': planId }, ctx);
    return bus.request<'placement.command'>(subject, { type: 'placement.command', planId, ...body } as CommandBody<'placement.command'>, { timeoutMs, ctx: trace.setSpan(ctx, span) })
      .then((r) => {
        if (!r.ok) throw new Error(`${body.action} on ${host}/${gpu} refused: ${r.error ?? 'no reason'}`);
        return r;
      })
      .catch((err) => { failSpan(span, err); throw err; })
      .finally(() => span.end());
  };

  /** One move: inference starts on the target before the source drains; training checkpoints, then resumes. */
  const runMove = async (m: Move, ctx: Context, planId: string): Promise<void> => {
    const [fromHost, fromGpu] = m.from.split('/') as [string, string];
    const [toHost, toGpu] = m.to.split('/') as [string, string];
    if (m.workload === 'service') {
      const d = await request(fromHost, fromGpu, { action: 'describe' }, ctx, planId);
      const spec = (d.state as { services?: Array<{ id: string; sloMs: number; batch: number; rateRps: number }> } | undefined)?.services?.find((s) => s.id === m.id);
      if (!spec) throw new Error(`service ${m.id} is no longer on ${m.from}`);
      await request(toHost, toGpu, { action: 'start-service', serviceId: m.id, sloMs: spec.sloMs, batch: spec.batch, rateRps: spec.rateRps }, ctx, planId);
      await request(fromHost, fromGpu, { action: 'drain-service', serviceId: m.id }, ctx, planId);
    } else {
      const ck = await request(fromHost, fromGpu, { action: 'checkpoint-training', jobId: m.id }, ctx, planId);
      const iterations = (ck.state as { checkpoint?: { iterations: number } } | undefined)?.checkpoint?.iterations ?? 0;
      await request(toHost, toGpu, { action: 'start-training', jobId: m.id, iterations }, ctx, planId);
    }
  };

  const actuate = (plan: FleetPlanSummary): void => {
    const span = fleetPlanSpan({
      planId: plan.planId, gpusTotal: plan.gpusTotal, gpusInUse: plan.gpusInUse, gpusFreed: plan.gpusFreed,
      targets: [...new Set(plan.moves.flatMap((m) => [m.from, m.to]))], actions: plan.moves.length,
      reason: plan.moves.some((m) => m.reason === 'relief') ? 'relief' : 'consolidate',
      attributes: {
        'gpucolo.fleet.gpus_in_use_before': plan.gpusInUseBefore,
        'gpucolo.fleet.moves': plan.moves.map((m) => `${m.workload} ${m.id} ${m.from} -> ${m.to} (${m.reason})`),
        'gpucolo.fleet.overloaded': plan.overloaded,
        'gpucolo.fleet.unrelieved': plan.unrelieved,
        'gpucolo.fleet.freed': plan.freed,
        'gpucolo.fleet.claimed': plan.claimed,
        'gpucolo.fleet.plan_ms': plan.planMs,
      },
    });
    const ctx = trace.setSpan(otelContext.active(), span);
    const unixMs = Date.now();
    bus.publish(subjects.fleetPlan(), {
      v: SCHEMA_VERSION, type: 'fleet.plan', fleetId, planId: plan.planId, unixMs,
      gpusTotal: plan.gpusTotal, gpusInUseBefore: plan.gpusInUseBefore, gpusInUse: plan.gpusInUse, gpusFreed: plan.gpusFreed,
      moves: plan.moves.slice(0, 1024), overloaded: plan.overloaded.slice(0, 1024), unrelieved: plan.unrelieved.slice(0, 1024), planMs: plan.planMs,
    }, ctx);
    for (const id of plan.claimed) {
      const [host, gpu] = id.split('/') as [string, string];
      bus.publish(subjects.gpuClaimed(host, gpu), { v: SCHEMA_VERSION, type: 'gpu.claimed', host, gpu, unixMs, fleetId, planId: plan.planId, gpusFreed: plan.gpusFreed }, ctx);
    }
    log(`fleet ${fleetId}: plan ${plan.planId}: ${plan.moves.length} move(s), ${plan.gpusInUseBefore} -> ${plan.gpusInUse} GPUs in use${plan.claimed.length ? `, claims ${plan.claimed.join(' ')}` : ''}${plan.freed.length ? `, frees ${plan.freed.join(' ')}` : ''}`);
    const failedFrom = new Set<string>();
    const moves = plan.moves.map((m) => otelContext.with(ctx, () => runMove(m, ctx, plan.planId))
      .then(() => actor.send({ type: 'MOVE_DONE', move: m, ok: true, nowMs: o.clock.now() }))
      .catch((err: unknown) => {
        failedFrom.add(m.from);
        log(`fleet ${fleetId}: move ${m.workload} ${m.id} ${m.from} -> ${m.to} failed: ${(err as Error).message}`);
        actor.send({ type: 'MOVE_DONE', move: m, ok: false, nowMs: o.clock.now(), error: (err as Error).message });
      }));
    const done = Promise.all(moves).finally(() => {
      inflightPlans.delete(done);
      log(`fleet ${fleetId}: plan ${plan.planId} done: ${plan.moves.length - failedFrom.size} of ${plan.moves.length} move(s) ok`);
      for (const id of plan.freed) {
        if (failedFrom.has(id)) continue;
        const [host, gpu] = id.split('/') as [string, string];
        bus.publish(subjects.gpuFreed(host, gpu), { v: SCHEMA_VERSION, type: 'gpu.freed', host, gpu, unixMs: Date.now(), fleetId, planId: plan.planId, gpusFreed: plan.gpusFreed }, ctx);
      }
      span.end();
    });
    inflightPlans.add(done);
  };

  actor = createActor(fleetMachine.provide({
    actions: {
      actuate: (_a, { plan }) => actuate(plan),
      recordPlan: (_a, { gpusInUse, gpusFreed }) => recordFleetPlan(gpusInUse, gpusFreed),
      announce: (_a, { state, revision }) => {
        if (state === 'leading') leaderChanges++;
        log(`fleet ${fleetId}: ${state}`);
        bus.publish(subjects.fleetLeader(), { v: SCHEMA_VERSION, type: 'fleet.leader', fleetId, unixMs: Date.now(), state, leaseRevision: revision });
      },
      readClock: ({ self }) => { self.send({ type: 'TICK', nowMs: o.clock.now(), wallMs: Date.now() }); },
    },
  }), {
    input: { ...o, fleetId },
    clock: o.clock.xstate,
  });
  bus.subscribe<'gpu.status'>(subjects.gpuStatus('*', '*'), ({ message }) => {
    actor.send({ type: 'STATUS', status: message, nowMs: o.clock.now() });
  });
  await bus.nc.flush();
  actor.start();

  let stopped = false;
  let ticking: Promise<void> = Promise.resolve();
  const tick = () => {
    ticking = lease.tick().then((s) => { if (!stopped) actor.send({ type: 'LEASE', held: s.held, revision: s.revision }); });
  };
  tick();
  const timer = setInterval(tick, o.leaseTickMs ?? Math.max(100, Math.round(ttlMs / 6)));

  return {
    actor,
    lease,
    stats: () => {
      const c = actor.getSnapshot().context;
      return {
        fleetId, leading: actor.getSnapshot().matches('leading'), rounds: c.rounds, plans: c.plans,
        movesIssued: c.movesIssued, movesDone: c.movesDone, movesFailed: c.movesFailed, gpusKnown: Object.keys(c.gpus).length, leaderChanges,
        planMsMean: c.plannedRounds ? c.planMsTotal / c.plannedRounds : 0, planMsMax: c.planMsMax, plannedRounds: c.plannedRounds,
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await Promise.race([Promise.allSettled([...inflightPlans]), new Promise((r) => setTimeout(r, timeoutMs))]);
      await ticking.catch(() => undefined);
      await lease.release();
      actor.send({ type: 'STOP' });
      await bus.nc.flush().catch(() => undefined);
    },
  };
}
