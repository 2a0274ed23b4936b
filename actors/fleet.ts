import { assign, enqueueActions, setup } from 'xstate';
import {
  initialPlannerState, planFleet,
  type FleetPlan, type Move, type PlannerGpu, type PlannerOptions, type PlannerState,
} from '../control/index.ts';
import { recordFleetPlan } from '../observability/index.ts';
import type { GpuStatusEvent } from '../schemas/index.ts';

/** What the fleet assumes where a status does not say (memory and type are not in gpu.status). */
export interface FleetDefaults {
  gpuType: string;
  gpuMemoryMiB: number;
  serviceMemoryMiB: number;
  trainingMemoryMiB: number;
  /** Fraction of a GPU a training job needs left by inference. */
  trainingDemand: number;
}

export const FLEET_DEFAULTS: FleetDefaults = {
  gpuType: 'sim', gpuMemoryMiB: 24_576, serviceMemoryMiB: 2048, trainingMemoryMiB: 12_288, trainingDemand: 0.3,
};

/** How long a new leader waits before its first plan, so every GPU has reported (fleet clock ms). */
export const FLEET_WARMUP_MS = 10_000;

export interface FleetActorInput {
  fleetId: string;
  /** Time between planning rounds while leading (fleet clock ms). */
  planPeriodMs?: number;
  /** A GPU with no status for this long is left out of plans (fleet clock ms). */
  staleAfterMs?: number;
  /** Rounds wait this long after taking the lead, so every GPU has reported (fleet clock ms). */
  warmupMs?: number;
  planner?: Partial<PlannerOptions>;
  defaults?: Partial<FleetDefaults>;
}

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

export interface FleetContext {
  fleetId: string;
  planPeriodMs: number;
  staleAfterMs: number;
  warmupMs: number;
  planner: Partial<PlannerOptions>;
  defaults: FleetDefaults;
  gpus: Record<string, FleetGpuView>;
  plannerState: PlannerState;
  /** Moves in flight per GPU: such a GPU is pinned (neither source nor target). */
  inflight: Record<string, number>;
  /** A GPU stays pinned until a status newer than this (fleet clock) shows the move's outcome. */
  settledAfterMs: Record<string, number>;
  /**
   * Service cost estimates by service id, smoothed (they travel with the service). They keep the
   * interference of where the service runs: erring high packs less, and measured better than a minimum
   * (which packed too tightly in the demo and broke SLOs).
   */
  serviceMs: Record<string, number>;
  nowMs: number;
  leadingSinceMs: number;
  rounds: number;
  plans: number;
  movesIssued: number;
  movesDone: number;
  movesFailed: number;
  /** Planner time over every round that planned (ms): sum, max and count, for the scale bench. */
  planMsTotal: number;
  planMsMax: number;
  plannedRounds: number;
  lastPlan?: FleetPlanSummary;
}

/** What one round decided, without the planner state. */
export type FleetPlanSummary = Omit<FleetPlan, 'state'> & { planId: string; planMs: number; nowMs: number };

export type FleetEvent =
  | { type: 'STATUS'; status: GpuStatusEvent; nowMs: number }
  | { type: 'LEASE'; held: boolean; revision: number }
  | { type: 'TICK'; nowMs: number; wallMs: number }
  | { type: 'MOVE_DONE'; move: Move; ok: boolean; nowMs: number; error?: string }
  | { type: 'STOP' };

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

/** Folds a GPU status into the fleet's view; updates the per-service cost estimates in `estimates`. */
export function viewOf(status: GpuStatusEvent, prev: FleetGpuView | undefined, estimates: Record<string, number>, nowMs: number): { view: FleetGpuView; estimates: Record<string, number> } {
  const next = estimates;
  const services = status.services.map((s) => {
    const before = prev?.services.find((x) => x.id === s.serviceId);
    const est = batchCostMs(s.meanMs, s.rateRps);
    // A GPU past its SLO is queue-bound: its mean says how long the queue is, not what a batch costs.
    // Learn the cost only from windows within the SLO (or when nothing better is known yet).
    if (est > 0 && (s.p99Ms <= s.sloMs || next[s.serviceId] === undefined)) {
      const prior = next[s.serviceId];
      next[s.serviceId] = prior === undefined ? est : COST_SMOOTHING * est + (1 - COST_SMOOTHING) * prior;
    }
    return {
      id: s.serviceId, sloMs: s.sloMs, rateRps: s.rateRps,
      p99Ms: before ? P99_SMOOTHING * s.p99Ms + (1 - P99_SMOOTHING) * before.p99Ms : s.p99Ms,
      serviceMs: next[s.serviceId] ?? 0,
    };
  });
  return { view: { host: status.host, gpu: status.gpu, seenMs: nowMs, services, trainings: status.trainings.map((t) => t.jobId) }, estimates: next };
}

/** The planner's input from the fleet's view: fresh GPUs only; moving or unsettled ones pinned. */
export function plannerInput(ctx: FleetContext): PlannerGpu[] {
  const d = ctx.defaults;
  const out: PlannerGpu[] = [];
  for (const [id, g] of Object.entries(ctx.gpus)) {
    if (ctx.nowMs - g.seenMs > ctx.staleAfterMs) continue;
    const pinned = (ctx.inflight[id] ?? 0) > 0 || g.seenMs <= (ctx.settledAfterMs[id] ?? Number.NEGATIVE_INFINITY);
    out.push({
      id, type: d.gpuType, capacity: 1, memoryMiB: d.gpuMemoryMiB, pinned,
      services: g.services.map((s) => ({ id: s.id, rateRps: s.rateRps, serviceMs: ctx.serviceMs[s.id] ?? s.serviceMs, sloMs: s.sloMs, p99Ms: s.p99Ms, memoryMiB: d.serviceMemoryMiB })),
      trainings: g.trainings.map((t) => ({ id: t, memoryMiB: d.trainingMemoryMiB, demand: d.trainingDemand })),
    });
  }
  return out;
}

/**
 * The fleet actor. Every fleet process runs one; only the one holding the KV lease (LEASE events from
 * the runner) plans. While leading, every plan period it folds the GPU statuses into the consolidation
 * planner (control/, pure) and hands the plan to the provided `actuate` (the runner's I/O: placement
 * commands over the bus, events, the plan span); MOVE_DONE events report back. A standby keeps its view
 * of the fleet warm, so a take-over plans from the first round.
 */
export const fleetMachine = setup({
  types: {
    context: {} as FleetContext,
    events: {} as FleetEvent,
    input: {} as FleetActorInput,
  },
  actions: {
    /** I/O: carry out a plan's moves (start before drain), publish its events, trace it. */
    actuate: (_args, _params: { plan: FleetPlanSummary }) => {},
    /**
     * Every plan a round makes, moves or none: what it leaves (GPUs in use, GPUs freed). By default the
     * gauges of observability/metrics.ts (the OpenTelemetry API: a no-op until a metrics exporter is set up).
     */
    recordPlan: (_args, params: { gpusInUse: number; gpusFreed: number }) => recordFleetPlan(params.gpusInUse, params.gpusFreed),
    /** I/O: say that this process leads or stands by. */
    announce: (_args, _params: { state: 'leading' | 'standby' | 'stopped'; revision: number }) => {},
    /** I/O: send TICK with the fleet clock now. */
    readClock: () => {},
  },
  delays: {
    planPeriod: ({ context }) => context.planPeriodMs,
  },
}).createMachine({
  id: 'fleet',
  context: ({ input }) => ({
    fleetId: input.fleetId,
    planPeriodMs: input.planPeriodMs ?? 1000,
    staleAfterMs: input.staleAfterMs ?? 5000,
    warmupMs: input.warmupMs ?? FLEET_WARMUP_MS,
    planner: input.planner ?? {},
    defaults: { ...FLEET_DEFAULTS, ...(input.defaults ?? {}) },
    gpus: {}, plannerState: initialPlannerState(), inflight: {}, settledAfterMs: {}, serviceMs: {},
    nowMs: 0, leadingSinceMs: Number.POSITIVE_INFINITY, rounds: 0, plans: 0, movesIssued: 0, movesDone: 0, movesFailed: 0,
    planMsTotal: 0, planMsMax: 0, plannedRounds: 0,
  }),
  initial: 'standby',
  on: {
    STATUS: {
      // In place, deliberately: 10,000 GPUs report every second, and copying the whole view per status
      // would cost O(GPUs) each time. The records stay plain data (the snapshot persists as before).
      actions: assign(({ context, event }) => {
        const id = `${event.status.host}/${event.status.gpu}`;
        const { view } = viewOf(event.status, context.gpus[id], context.serviceMs, event.nowMs);
        context.gpus[id] = view;
        return { gpus: context.gpus, serviceMs: context.serviceMs, nowMs: Math.max(context.nowMs, event.nowMs) };
      }),
    },
    MOVE_DONE: {
      actions: assign(({ context, event }) => {
        const inflight = { ...context.inflight };
        const settledAfterMs = { ...context.settledAfterMs };
        for (const id of [event.move.from, event.move.to]) {
          inflight[id] = Math.max(0, (inflight[id] ?? 0) - 1);
          settledAfterMs[id] = event.nowMs;
        }
        return { inflight, settledAfterMs, movesDone: context.movesDone + (event.ok ? 1 : 0), movesFailed: context.movesFailed + (event.ok ? 0 : 1) };
      }),
    },
    STOP: '.stopped',
  },
  states: {
    standby: {
      on: {
        LEASE: {
          guard: ({ event }) => event.held,
          target: 'leading',
          actions: [
            // -1: the lead's clock starts at its first TICK.
            assign({ leadingSinceMs: -1 }),
            { type: 'announce', params: ({ event }) => ({ state: 'leading' as const, revision: event.revision }) },
          ],
        },
      },
    },
    leading: {
      entry: 'readClock',
      after: { planPeriod: { target: 'leading', reenter: true } },
      on: {
        LEASE: {
          guard: ({ event }) => !event.held,
          target: 'standby',
          actions: [
            assign({ leadingSinceMs: Number.POSITIVE_INFINITY }),
            { type: 'announce', params: ({ event }) => ({ state: 'standby' as const, revision: event.revision }) },
          ],
        },
        TICK: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const nowMs = Math.max(context.nowMs, event.nowMs);
            // The first TICK of a lead only starts the clock; planning waits for the warm-up.
            const leadingSinceMs = context.leadingSinceMs < 0 ? nowMs : context.leadingSinceMs;
            enqueue.assign({ nowMs, leadingSinceMs, rounds: context.rounds + 1 });
            if (nowMs - leadingSinceMs < context.warmupMs) return;
            const started = performance.now();
            const input = plannerInput({ ...context, nowMs });
            if (input.length === 0) return;
            const plan = planFleet(input, context.plannerState, nowMs, context.planner);
            const planMs = performance.now() - started;
            const { state, ...rest } = plan;
            enqueue.assign({
              plannerState: state, planMsTotal: context.planMsTotal + planMs, planMsMax: Math.max(context.planMsMax, planMs), plannedRounds: context.plannedRounds + 1,
            });
            enqueue({ type: 'recordPlan', params: { gpusInUse: plan.gpusInUse, gpusFreed: plan.gpusFreed } });
            if (plan.moves.length === 0) return;
            const inflight = { ...context.inflight };
            for (const m of plan.moves) for (const id of [m.from, m.to]) inflight[id] = (inflight[id] ?? 0) + 1;
            const summary: FleetPlanSummary = { ...rest, planId: `${context.fleetId}-${event.wallMs.toString(36)}-${context.plans + 1}`, planMs, nowMs };
            enqueue.assign({ inflight, plans: context.plans + 1, movesIssued: context.movesIssued + plan.moves.length, lastPlan: summary });
            enqueue({ type: 'actuate', params: { plan: summary } });
          }),
        },
      },
    },
    stopped: {
      type: 'final',
      entry: { type: 'announce', params: { state: 'stopped', revision: 0 } },
    },
  },
});
