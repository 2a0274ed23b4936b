import { assign, setup } from 'xstate';
import type { Pacing } from '../control/types.ts';
import type { TrainingRunState } from '../gpu/types.ts';

export interface TrainingInput {
  host: string;
  gpu: string;
  jobId: string;
  periodMs: number;
}

export interface TrainingReport {
  seq: number;
  tMs: number;
  windowMs: number;
  iterations: number;
  itersPerSec: number;
  state: TrainingRunState;
  mpsSharePct: number;
  pacing: Pacing;
}

export interface TrainingContext extends TrainingInput {
  seq: number;
  lastTMs: number;
  lastIterations: number;
  last?: TrainingReport;
}

export type TrainingCommandEvent =
  | { type: 'SET_PACING'; pacing: Pacing }
  | { type: 'SET_MPS_SHARE'; mpsSharePct: number }
  | { type: 'SET_RUNNING'; running: boolean };

export type TrainingEvent =
  | { type: 'STATUS'; tMs: number; iterations: number; state: TrainingRunState; mpsSharePct: number; pacing: Pacing }
  | TrainingCommandEvent
  | { type: 'STOP' };

/**
 * A training job on one GPU: reports its progress every period and applies the knobs the GPU actor
 * commands (through the provided `apply` action). On STOP it releases any sleep: a job is never left paused.
 */
export const trainingMachine = setup({
  types: {
    context: {} as TrainingContext,
    events: {} as TrainingEvent,
    input: {} as TrainingInput,
  },
  actions: {
    /** I/O: read the job's status and send STATUS back to this actor. */
    sample: () => {},
    /** I/O: put the report on the bus. */
    report: (_args, _params: { report: TrainingReport }) => {},
    /** I/O: apply a command to the job on the device. */
    apply: (_args, _params: { command: TrainingCommandEvent }) => {},
    /** I/O: let the job run unthrottled (called when the actor stops). */
    release: () => {},
  },
  delays: {
    period: ({ context }) => context.periodMs,
  },
}).createMachine({
  id: 'training',
  context: ({ input }) => ({ ...input, seq: 0, lastTMs: -1, lastIterations: 0 }),
  initial: 'active',
  states: {
    active: {
      after: { period: { target: 'active', reenter: true, actions: 'sample' } },
      on: {
        STATUS: {
          actions: [
            assign(({ context, event }) => {
              const windowMs = context.lastTMs < 0 ? context.periodMs : Math.max(1, event.tMs - context.lastTMs);
              const done = context.lastTMs < 0 ? 0 : event.iterations - context.lastIterations;
              const report: TrainingReport = {
                seq: context.seq + 1, tMs: event.tMs, windowMs, iterations: event.iterations,
                itersPerSec: Math.max(0, (done * 1000) / windowMs), state: event.state,
                mpsSharePct: event.mpsSharePct, pacing: event.pacing,
              };
              return { seq: report.seq, lastTMs: event.tMs, lastIterations: event.iterations, last: report };
            }),
            { type: 'report', params: ({ context }) => ({ report: context.last! }) },
          ],
        },
        SET_PACING: { actions: { type: 'apply', params: ({ event }) => ({ command: event }) } },
        SET_MPS_SHARE: { actions: { type: 'apply', params: ({ event }) => ({ command: event }) } },
        SET_RUNNING: { actions: { type: 'apply', params: ({ event }) => ({ command: event }) } },
        STOP: 'stopped',
      },
    },
    stopped: { type: 'final', entry: 'release' },
  },
});
