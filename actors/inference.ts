import { assign, setup } from 'xstate';
import type { Completion } from '../gpu/index.ts';
import {
  addToHistogram, addToSeconds, emptySecondWindows, histogramQuantile, summarize,
  type LatencyHistogram, type LatencyWindow, type SecondWindows,
} from '../control/index.ts';

export interface InferenceInput {
  host: string;
  gpu: string;
  serviceId: string;
  sloMs: number;
  /** Offered load, requests (batches) per second. */
  rateRps: number;
  /** How often the actor reports a latency window (device ms). */
  periodMs: number;
}

/** The window the inference actor reports, before it is put on the wire. */
export interface InferenceReport extends Omit<LatencyWindow, 'serviceId'> {
  seq: number;
  tMs: number;
  sloWindows: number;
  sloWindowsMet: number;
  /** p99 over every request of the run so far. */
  runP99Ms: number;
}

/**
 * The report an inference.window message carries (what the GPU actor's WINDOW takes), copied field by field: a
 * rest spread (`{ v, type, host, gpu, serviceId, ...report }`) clones into an object that outlives V8's young
 * generation (Node 20), and one such per window lengthened every scavenge on the control round trip's path.
 */
export function inferenceReportOf(m: InferenceReport): InferenceReport {
  return {
    seq: m.seq, tMs: m.tMs, windowMs: m.windowMs, sloMs: m.sloMs, count: m.count, meanMs: m.meanMs, p50Ms: m.p50Ms,
    p95Ms: m.p95Ms, p99Ms: m.p99Ms, maxMs: m.maxMs, rateRps: m.rateRps, sloWindows: m.sloWindows,
    sloWindowsMet: m.sloWindowsMet, runP99Ms: m.runP99Ms,
  };
}

/** A change of offered load (from an inference command). */
export type LoadChange = { type: 'SET_RATE'; rateRps: number } | { type: 'SCALE_RATE'; scale: number } | { type: 'SET_BATCH'; batch: number };

export interface InferenceContext extends InferenceInput {
  seq: number;
  lastTMs: number;
  seconds: SecondWindows;
  histogram: LatencyHistogram;
  last?: InferenceReport;
  /** Requests in flight at the last sample (-1: not measured); a drain ends at 0. */
  inFlight?: number;
}

export type InferenceEvent =
  | { type: 'SAMPLES'; tMs: number; completions: Completion[]; arrivals: number; /** Requests waiting or in service (read before the completions). */ inFlight?: number }
  /** The fleet moved this service away: no new requests; finish the ones in flight, report them, stop. */
  | { type: 'DRAIN' }
  | { type: 'SET_SLO'; sloMs: number }
  | LoadChange
  | { type: 'STOP' };

/** Summarises one period's completions into a report (pure). */
export function summarizePeriod(
  ctx: InferenceContext,
  e: Extract<InferenceEvent, { type: 'SAMPLES' }>,
): { report: InferenceReport; seconds: SecondWindows; histogram: LatencyHistogram } {
  const lat = e.completions.map((c) => c.latencyMs);
  const histogram = addToHistogram(ctx.histogram, lat);
  const windowMs = ctx.lastTMs < 0 ? ctx.periodMs : Math.max(1, e.tMs - ctx.lastTMs);
  const seconds = addToSeconds(ctx.seconds, e.completions, e.tMs, ctx.sloMs);
  const { serviceId: _id, ...window } = summarize(ctx.serviceId, ctx.sloMs, lat, e.arrivals, windowMs);
  const report: InferenceReport = {
    ...window,
    seq: ctx.seq + 1,
    tMs: e.tMs,
    sloWindows: seconds.windows,
    sloWindowsMet: seconds.windowsMet,
    runP99Ms: histogramQuantile(histogram, 0.99),
  };
  return { report, seconds, histogram };
}

/**
 * An inference service on one GPU: every period it samples the requests that finished (through the
 * provided `sample` action, which answers with SAMPLES) and reports a latency window (`report`).
 */
export const inferenceMachine = setup({
  types: {
    context: {} as InferenceContext,
    events: {} as InferenceEvent,
    input: {} as InferenceInput,
  },
  actions: {
    /** I/O: read the device and send SAMPLES back to this actor. */
    sample: () => {},
    /** I/O: put the report on the bus. */
    report: (_args, _params: { report: InferenceReport }) => {},
    /** I/O: change the offered load on the device. */
    applyLoad: (_args, _params: { rateRps?: number; batch?: number }) => {},
  },
  delays: {
    period: ({ context }) => context.periodMs,
  },
}).createMachine({
  id: 'inference',
  context: ({ input }) => ({ ...input, seq: 0, lastTMs: -1, seconds: emptySecondWindows(), histogram: {}, inFlight: -1 }),
  initial: 'serving',
  // Samples are summarised and reported while serving and while draining alike.
  on: {
    SAMPLES: {
      actions: [
        assign(({ context, event }) => {
          const { report, seconds, histogram } = summarizePeriod(context, event);
          return { seq: report.seq, lastTMs: event.tMs, seconds, histogram, last: report, inFlight: event.inFlight ?? -1 };
        }),
        { type: 'report', params: ({ context }) => ({ report: context.last! }) },
      ],
    },
  },
  states: {
    serving: {
      after: { period: { target: 'serving', reenter: true, actions: 'sample' } },
      on: {
        SET_SLO: { actions: assign({ sloMs: ({ event }) => event.sloMs }) },
        SET_RATE: { actions: [assign({ rateRps: ({ event }) => event.rateRps }), { type: 'applyLoad', params: ({ context }) => ({ rateRps: context.rateRps }) }] },
        SCALE_RATE: { actions: [assign({ rateRps: ({ context, event }) => context.rateRps * event.scale }), { type: 'applyLoad', params: ({ context }) => ({ rateRps: context.rateRps }) }] },
        SET_BATCH: { actions: { type: 'applyLoad', params: ({ event }) => ({ batch: event.batch }) } },
        DRAIN: 'draining',
        STOP: 'stopped',
      },
    },
    // Draining: the new instance already serves (the fleet starts it first); this one takes no new
    // requests, and reports every request still in flight before it stops, so none is lost or uncounted.
    draining: {
      entry: [assign({ rateRps: 0, inFlight: -1 }), { type: 'applyLoad', params: { rateRps: 0 } }],
      initial: 'waiting',
      states: {
        waiting: { after: { period: { target: 'waiting', reenter: true, actions: 'sample' } } },
      },
      always: { guard: ({ context }) => context.inFlight === 0, target: 'drained' },
      on: { STOP: 'stopped' },
    },
    drained: { type: 'final' },
    stopped: { type: 'final' },
  },
});
