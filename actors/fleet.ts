import { assign, enqueueActions, setup } from 'xstate';
import {
  initialPlannerState, planFleet, viewOf,
  type FleetGpuView, type FleetPlan, type Move, type PlannerGpu, type PlannerOptions, type PlannerState,
} from '../control/index.ts';
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
  /**
   * Fleet clock when this process's lead began; -1 from taking the lead to its first TICK; null while it
   * does not lead (standby or stopped). JSON-safe, unlike the Infinity it replaces.
   */
  leadingSinceMs: number | null;
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
  /** The `plan` action's answer: a round's plan and the time the planner took (ms). */
  | { type: 'PLANNED'; plan: FleetPlan; planMs: number; nowMs: number; wallMs: number }
  | { type: 'MOVE_DONE'; move: Move; ok: boolean; nowMs: number; error?: string }
  | { type: 'STOP' };

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
     * I/O: every plan a round makes, moves or none: what it leaves (GPUs in use, GPUs freed). The fleet runner
     * records them as the gauges of observability/metrics.ts.
     */
    recordPlan: (_args, _params: { gpusInUse: number; gpusFreed: number }) => {},
    /** I/O: say that this process leads or stands by. */
    announce: (_args, _params: { state: 'leading' | 'standby' | 'stopped'; revision: number }) => {},
    /** I/O: send TICK with the fleet clock now. */
    readClock: () => {},
    /**
     * Runs the planner (control/, pure) and sends PLANNED with its plan and the time it took. The default
     * times it with performance.now(); the clock read is here, behind provide(), not in the machine's logic.
     */
    plan: ({ self }, p: { input: PlannerGpu[]; state: PlannerState; options: Partial<PlannerOptions>; nowMs: number; wallMs: number }) => {
      const started = performance.now();
      const plan = planFleet(p.input, p.state, p.nowMs, p.options);
      self.send({ type: 'PLANNED', plan, planMs: performance.now() - started, nowMs: p.nowMs, wallMs: p.wallMs });
    },
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
    nowMs: 0, leadingSinceMs: null, rounds: 0, plans: 0, movesIssued: 0, movesDone: 0, movesFailed: 0,
    planMsTotal: 0, planMsMax: 0, plannedRounds: 0,
  }),
  initial: 'standby',
  on: {
    STATUS: {
      // The view (control/, pure) is new; it is stored in place, deliberately: 10,000 GPUs report every second,
      // and copying the whole view per status would cost O(GPUs) each time. The records stay plain data.
      actions: assign(({ context, event }) => {
        const id = `${event.status.host}/${event.status.gpu}`;
        const { view, updated } = viewOf(event.status, context.gpus[id], context.serviceMs, event.nowMs);
        context.gpus[id] = view;
        Object.assign(context.serviceMs, updated);
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
            assign({ leadingSinceMs: null }),
            { type: 'announce', params: ({ event }) => ({ state: 'standby' as const, revision: event.revision }) },
          ],
        },
        TICK: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const nowMs = Math.max(context.nowMs, event.nowMs);
            // The first TICK of a lead only starts the clock; planning waits for the warm-up.
            const leadingSinceMs = context.leadingSinceMs === null || context.leadingSinceMs < 0 ? nowMs : context.leadingSinceMs;
            enqueue.assign({ nowMs, leadingSinceMs, rounds: context.rounds + 1 });
            if (nowMs - leadingSinceMs < context.warmupMs) return;
            const input = plannerInput({ ...context, nowMs });
            if (input.length === 0) return;
            enqueue({ type: 'plan', params: { input, state: context.plannerState, options: context.planner, nowMs, wallMs: event.wallMs } });
          }),
        },
        PLANNED: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const { plan, planMs, nowMs } = event;
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
