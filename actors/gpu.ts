import { assign, enqueueActions, raise, setup } from 'xstate';
import { createPolicy, mergeWindows, pacingValue, samePacing } from '../control/index.ts';
import type { ControlInput, Decision, Knobs, LatencyWindow, Policy, PolicyName, TrainingObservation } from '../control/index.ts';
import type { Actuation, GpuActorInput, GpuContext, GpuEvent, ServiceView } from './gpu-context.ts';
import type { InferenceReport } from './inference.ts';

// The actor's types live in gpu-context.ts; they stay importable from here.
export type { Actuation, GpuActorInput, GpuContext, GpuEvent, ServiceView } from './gpu-context.ts';

const policies = new Map<string, Policy>();
/** The same, by the options object itself: the lookup on every event serialises no options. */
const policiesByOptions = new WeakMap<Record<string, unknown>, Map<PolicyName, Policy>>();
/** The (pure, stateless) policy object for a name and options; its state lives in the snapshot. */
export function policyFor(name: PolicyName, options: Record<string, unknown>): Policy {
  let byName = policiesByOptions.get(options);
  let p = byName?.get(name);
  if (p) return p;
  const key = `${name}:${JSON.stringify(options)}`;
  p = policies.get(key);
  if (!p) {
    p = createPolicy(name, options) as Policy;
    policies.set(key, p);
  }
  if (!byName) policiesByOptions.set(options, (byName = new Map()));
  byName.set(name, p);
  return p;
}

function controlInput(ctx: GpuContext, tier: 'inner' | 'outer'): ControlInput {
  // for...in over own keys (plain objects), not Object.entries: no [key, value] pair per entry per period.
  const services: LatencyWindow[] = [];
  for (const id in ctx.services) {
    const s = ctx.services[id]!;
    const ws = tier === 'inner' ? s.innerWindows : s.outerWindows;
    if (!ws.length) continue;
    // The merge is a new object: named and given its SLO in place, not copied by a spread (the round trip's path).
    const merged = mergeWindows(ws);
    merged.serviceId = id;
    merged.sloMs = s.sloMs;
    services.push(merged);
  }
  const trainings: TrainingObservation[] = [];
  for (const jobId in ctx.trainings) {
    const t = ctx.trainings[jobId]!;
    trainings.push({ jobId, itersPerSec: t.itersPerSec, running: t.state === 'running' });
  }
  return { nowMs: ctx.tMs, services, trainings, knobs: ctx.knobs };
}

/** Counts the knob changes between two settings: [mps changes, sleep changes]. */
function changes(a: Knobs, b: Knobs): [number, number] {
  const mps = a.mpsSharePct !== b.mpsSharePct ? 1 : 0;
  const sleep = samePacing(a.pacing, b.pacing) ? 0 : 1;
  return [mps, sleep];
}

/**
 * One GPU's two-tier controller. Latency windows and training progress arrive as events (from the bus);
 * every inner and outer period the policy (control/, pure) decides, and the provided `actuate` action
 * sends the new knobs to the training actors. With no telemetry it falls back to a safe sleep duty.
 */
export const gpuMachine = setup({
  types: {
    context: {} as GpuContext,
    events: {} as GpuEvent,
    input: {} as GpuActorInput,
  },
  actions: {
    /** I/O: trace and publish the decisions, then send changed knobs to the training actors. */
    actuate: (_args, _params: Actuation) => {},
    publishStatus: () => {},
    publishSafety: (_args, _params: { condition: 'telemetry-lost' | 'telemetry-restored' | 'shutdown'; detail: string }) => {},
    /** I/O: let every training job run unthrottled (the controller is going away). */
    releaseTraining: () => {},
    /** I/O: send CLOCK with the device time now (the watchdog's reading). */
    readClock: () => {},
  },
  delays: {
    // The watchdog ticks at the inner period (at most 1 s) and counts periods without telemetry.
    watchdogPeriod: ({ context }) => watchdogPeriodMs(context),
    outerPeriod: ({ context }) => {
      const ms = policyFor(context.policyName, context.policyOptions).outerPeriodMs;
      return Number.isFinite(ms) ? ms : 1e9;
    },
    statusPeriod: ({ context }) => context.statusPeriodMs,
  },
}).createMachine({
  id: 'gpu',
  context: ({ input }) => {
    const policy = policyFor(input.policy, input.policyOptions ?? {});
    return {
      host: input.host, gpu: input.gpu, policyName: input.policy, policyOptions: input.policyOptions ?? {},
      policyState: policy.initialState(), knobs: input.knobs ?? policy.initialKnobs(), services: {}, trainings: {},
      staleAfterMs: input.staleAfterMs ?? 2000, lastWindowTMs: 0, safe: false, downServices: {}, mpsShareFixed: input.mpsShareFixed ?? false, lastInnerTMs: Number.NEGATIVE_INFINITY, safeDuty: input.safeDuty ?? 0.9,
      statusPeriodMs: input.statusPeriodMs ?? 1000, tMs: 0, mpsChanges: 0, sleepChanges: 0, decisions: 0,
    };
  },
  initial: 'running',
  states: {
    running: {
      type: 'parallel',
      entry: { type: 'actuate', params: ({ context }) => ({ tier: 'start' as const, old: context.knobs, knobs: context.knobs, decisions: [] }) },
      on: {
        WINDOW: {
          // One action, no assign: a window and the decision it completes are written into the actor's own
          // context in place (an xstate assign copies the whole context and clones the snapshot, twice a window
          // before; at a window every 200 ms per service that churn was most of the actor's allocation, and its
          // young-generation collections the control round trip's tail).
          actions: enqueueActions(({ context, event, enqueue }) => {
            addWindow(context, event.serviceId, event.report);
            // Decide as soon as a period's worth of telemetry is in: no timer phase lag between the
            // inference actor's windows and the decision.
            const silent = silentServices(context, context.tMs);
            if (context.safe) {
              if (silent.length === 0 && !anyDown(context)) enqueue(raise({ type: 'TELEMETRY_RESTORED' }));
              return;
            }
            if (silent.length > 0) {
              enqueue(raise({ type: 'TELEMETRY_LOST', silent }));
              return;
            }
            const periodMs = policyFor(context.policyName, context.policyOptions).innerPeriodMs;
            if (context.tMs - context.lastInnerTMs < 0.9 * periodMs) return;
            context.lastInnerTMs = context.tMs;
            stepPolicy(context, 'inner', enqueue);
            // The decision has read them (synchronously, above): the next period starts with none.
            for (const id in context.services) { const sv = context.services[id]!; if (sv.innerWindows.length) sv.innerWindows = []; }
          }),
        },
        PROGRESS: {
          actions: assign(({ context, event }) => ({
            trainings: { ...context.trainings, [event.jobId]: event.report },
            tMs: Math.max(context.tMs, event.report.tMs),
          })),
        },
        SET_SLO: {
          actions: assign(({ context, event }) => {
            const services = { ...context.services };
            for (const id of Object.keys(services)) {
              if (!event.serviceId || event.serviceId === id) services[id] = { ...services[id]!, sloMs: event.sloMs };
            }
            return { services };
          }),
        },
        SET_POLICY: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const policy = policyFor(event.policy, {});
            const knobs = context.mpsShareFixed ? { ...policy.initialKnobs(), mpsSharePct: context.knobs.mpsSharePct } : policy.initialKnobs();
            const [mps, sleep] = changes(context.knobs, knobs);
            enqueue({ type: 'actuate', params: { tier: 'start', old: context.knobs, knobs, decisions: [] } });
            enqueue.assign({
              policyName: event.policy, policyOptions: {}, policyState: policy.initialState(), knobs,
              mpsChanges: context.mpsChanges + mps, sleepChanges: context.sleepChanges + sleep,
            });
          }),
        },
        SERVICE_REMOVED: {
          actions: assign(({ context, event }) => {
            const { [event.serviceId]: _gone, ...services } = context.services;
            const { [event.serviceId]: _down, ...downServices } = context.downServices;
            return { services, downServices };
          }),
        },
        WORKLOAD_DOWN: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            enqueue.assign({ downServices: { ...context.downServices, [event.serviceId]: event.detail } });
            if (context.safe) {
              // Already safe for another cause: this one is said too, and keeps the setting until it clears.
              enqueue({ type: 'publishSafety', params: { condition: 'telemetry-lost', detail: `${event.detail}: training sleep duty held at ${context.safeDuty}` } });
              return;
            }
            enqueue(raise({ type: 'TELEMETRY_LOST', silent: [event.serviceId], detail: `${event.detail}: training sleep duty held at ${context.safeDuty}` }));
          }),
        },
        WORKLOAD_UP: {
          // Back in the running; control resumes once its latency comes again (the next served window).
          actions: assign(({ context, event }) => {
            const { [event.serviceId]: _up, ...downServices } = context.downServices;
            return { downServices };
          }),
        },
        TRAINING_REMOVED: {
          actions: assign(({ context, event }) => {
            const { [event.jobId]: _gone, ...trainings } = context.trainings;
            return { trainings };
          }),
        },
        CLOCK: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            // A reading later than a period plus one is this process's own stall (an overloaded event loop,
            // a simulated clock run faster than the process keeps up): it does not count as silence.
            const period = watchdogPeriodMs(context);
            const late = context.lastClockTMs === undefined ? 0 : Math.max(0, event.tMs - context.lastClockTMs - 2 * period);
            const stallMs = (context.stallMs ?? 0) + late;
            enqueue.assign({ lastClockTMs: event.tMs, stallMs });
            // With no service left (the fleet moved them away) there is no latency to lose: no safe mode.
            if (context.safe || Object.keys(context.services).length === 0) return;
            const silent = silentServices(context, event.tMs - stallMs);
            if (event.tMs - context.lastWindowTMs - stallMs > context.staleAfterMs || silent.length > 0) {
              enqueue(raise({ type: 'TELEMETRY_LOST', silent }));
            }
          }),
        },
        STOP: 'stopped',
      },
      states: {
        mode: {
          initial: 'controlling',
          states: {
            controlling: { on: { TELEMETRY_LOST: 'safe' } },
            safe: {
              entry: [
                // The detail says what the decision saw (the watchdog's clock, not the last window's time).
                { type: 'publishSafety', params: ({ context, event }) => ({ condition: 'telemetry-lost' as const, detail: event.type === 'TELEMETRY_LOST' && event.detail ? event.detail : lostDetail(context, event.type === 'TELEMETRY_LOST' ? event.silent : silentServices(context, context.tMs)) }) },
                enqueueActions(({ context, enqueue }) => {
                  const knobs: Knobs = { ...context.knobs, pacing: { mode: 'duty', duty: context.safeDuty, periodMs: context.knobs.pacing.mode === 'duty' ? context.knobs.pacing.periodMs : 50 } };
                  overrideKnobs(context, knobs, 'telemetry lost: safe sleep duty', { lastWindowTMs: context.lastWindowTMs, staleAfterMs: context.staleAfterMs }, enqueue);
                  enqueue.assign({ safe: true, preSafeKnobs: context.knobs });
                }),
              ],
              on: {
                TELEMETRY_RESTORED: {
                  target: 'controlling',
                  actions: [
                    { type: 'publishSafety', params: { condition: 'telemetry-restored', detail: 'latency windows are arriving again: control resumes from its own knobs' } },
                    enqueueActions(({ context, enqueue }) => {
                      overrideKnobs(context, context.preSafeKnobs ?? context.knobs, 'telemetry restored: controller knobs back', { lastWindowTMs: context.lastWindowTMs }, enqueue);
                      enqueue.assign({ safe: false, preSafeKnobs: undefined });
                    }),
                  ],
                },
              },
            },
          },
        },
        watchdog: {
          initial: 'waiting',
          states: {
            waiting: {
              after: {
                watchdogPeriod: {
                  target: 'waiting',
                  reenter: true,
                  actions: 'readClock',
                },
              },
            },
          },
        },
        outer: {
          initial: 'waiting',
          states: {
            waiting: {
              after: {
                outerPeriod: {
                  target: 'waiting',
                  reenter: true,
                  actions: enqueueActions(({ context, enqueue }) => {
                    const got = Object.values(context.services).some((s) => s.outerWindows.length > 0);
                    if (got && !context.safe && !context.mpsShareFixed) stepPolicy(context, 'outer', enqueue);
                    for (const s of Object.values(context.services)) if (s.outerWindows.length) s.outerWindows = [];
                  }),
                },
              },
            },
          },
        },
        status: {
          initial: 'waiting',
          states: { waiting: { after: { statusPeriod: { target: 'waiting', reenter: true, actions: 'publishStatus' } } } },
        },
      },
    },
    stopped: {
      type: 'final',
      entry: ['releaseTraining', { type: 'publishSafety', params: { condition: 'shutdown', detail: 'controller stopping: training released to run unthrottled' } }],
    },
  },
});

type Enqueue = any;

/** Services that served before and have finished no request for over staleAfterMs (device time `nowMs`). */
export function silentServices(context: GpuContext, nowMs: number): string[] {
  // Runs on every window: a loop over the keys, not entries filtered and mapped (three arrays and a pair per service).
  const out: string[] = [];
  for (const id in context.services) {
    const s = context.services[id]!;
    if (s.lastServedTMs !== undefined && nowMs - s.lastServedTMs > context.staleAfterMs) out.push(id);
  }
  return out;
}

/** True while a service's workload is down. */
function anyDown(context: GpuContext): boolean {
  return Object.keys(context.downServices).length > 0;
}

function lostDetail(context: GpuContext, silent: readonly string[]): string {
  const why = silent.length
    ? `service ${silent.join(', ')} finished no request for over ${context.staleAfterMs} ms (its workload died, hung or stopped reporting)`
    : `no latency window for over ${context.staleAfterMs} ms`;
  return `${why}: training sleep duty held at ${context.safeDuty}`;
}

/** A safety override of the pacing knob: actuates it, publishes why, and counts the change. */
function overrideKnobs(context: GpuContext, knobs: Knobs, reason: string, terms: Record<string, number>, enqueue: Enqueue): void {
  const decision: Decision = {
    tier: 'inner', knob: 'pacing', oldValue: pacingValue(context.knobs.pacing), newValue: pacingValue(knobs.pacing), reason, terms,
  };
  const [mps, sleep] = changes(context.knobs, knobs);
  enqueue({ type: 'actuate', params: { tier: 'safety', old: context.knobs, knobs, decisions: [decision] } });
  enqueue.assign({ knobs, mpsChanges: context.mpsChanges + mps, sleepChanges: context.sleepChanges + sleep });
}

/** The watchdog's tick: the inner period, at most 1 s. */
function watchdogPeriodMs(context: GpuContext): number {
  return Math.min(1000, policyFor(context.policyName, context.policyOptions).innerPeriodMs);
}

/**
 * Runs one policy step: enqueues the knob change (actuate) and writes the new policy state, knobs and counters
 * into the actor's context in place (the actor's own object; see WINDOW).
 */
function stepPolicy(context: GpuContext, tier: 'inner' | 'outer', enqueue: Enqueue): void {
  const policy = policyFor(context.policyName, context.policyOptions);
  const input = controlInput(context, tier);
  const proposed = tier === 'inner' ? policy.inner(context.policyState, input) : policy.outer(context.policyState, input);
  // A fixed share is the hardware's fact: whatever a policy proposes for it, it stays.
  const out = context.mpsShareFixed && proposed.knobs.mpsSharePct !== context.knobs.mpsSharePct
    ? { ...proposed, knobs: { ...proposed.knobs, mpsSharePct: context.knobs.mpsSharePct }, decisions: proposed.decisions.filter((d) => d.knob !== 'mpsSharePct') }
    : proposed;
  const [mps, sleep] = changes(context.knobs, out.knobs);
  if (mps || sleep || out.knobs.trainingRunning !== context.knobs.trainingRunning || out.decisions.length) {
    enqueue({ type: 'actuate', params: { tier, old: context.knobs, knobs: out.knobs, decisions: out.decisions } });
  }
  context.policyState = out.state;
  context.knobs = out.knobs;
  context.mpsChanges += mps;
  context.sleepChanges += sleep;
  context.decisions += out.decisions.length;
}

/**
 * A latency window into the actor's context, in place: its service's window buffers (appended, never copied
 * per window; a tier that consumes them puts a fresh array in their place) and the device times.
 */
function addWindow(context: GpuContext, serviceId: string, r: InferenceReport): void {
  // Field by field: a spread clone given a new key ({ ...latency, serviceId }) outlives the young
  // generation in V8 (Node 20), and every window's would make each scavenge a long pause.
  const w: LatencyWindow = {
    serviceId, sloMs: r.sloMs, count: r.count, meanMs: r.meanMs, p50Ms: r.p50Ms, p95Ms: r.p95Ms,
    p99Ms: r.p99Ms, maxMs: r.maxMs, rateRps: r.rateRps, windowMs: r.windowMs,
  };
  const prev = context.services[serviceId];
  if (prev) {
    prev.innerWindows.push(w);
    // A fixed share has no outer tier to read them: none kept (the buffer only grew until its clear).
    if (!context.mpsShareFixed) prev.outerWindows.push(w);
    prev.last = r;
    if (r.count > 0) prev.lastServedTMs = r.tMs;
  } else {
    const view: ServiceView = { sloMs: r.sloMs, innerWindows: [w], outerWindows: context.mpsShareFixed ? [] : [w], last: r };
    if (r.count > 0) view.lastServedTMs = r.tMs;
    // A new services object (assigns elsewhere copy it; a snapshot taken before still lists what it listed).
    context.services = Object.assign({}, context.services, { [serviceId]: view });
  }
  context.tMs = Math.max(context.tMs, r.tMs);
  context.lastWindowTMs = Math.max(context.lastWindowTMs, r.tMs);
  context.stallMs = 0;
}
