import { assign, setup } from 'xstate';
import type { Pacing } from '../control/index.ts';
import type { TrainingRunState } from '../gpu/index.ts';

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
  /** Recent (tMs, iterations) points: the rate is measured over RATE_WINDOW_MS, since iterations are whole. */
  history: Array<[number, number]>;
  last?: TrainingReport;
}

/** Iterations last 0.4-0.8 s: a rate over one 200 ms report would read 0 or 5 it/s; 5 s reads true. */
export const RATE_WINDOW_MS = 5000;

export type TrainingCommandEvent =
  | { type: 'SET_PACING'; pacing: Pacing }
  | { type: 'SET_MPS_SHARE'; mpsSharePct: number }
  | { type: 'SET_RUNNING'; running: boolean };

export type TrainingEvent =
  | { type: 'STATUS'; tMs: number; iterations: number; state: TrainingRunState; mpsSharePct: number; pacing: Pacing }
  | TrainingCommandEvent
  /** The fleet moves this job: checkpoint and stop it here (it restarts from the checkpoint elsewhere). */
  | { type: 'CHECKPOINT' }
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
    /** I/O: checkpoint the job and stop it (not paused: stopped) for a restart on another GPU. */
    checkpoint: () => {},
  },
  delays: {
    period: ({ context }) => context.periodMs,
  },
}).createMachine({
  id: 'training',
  context: ({ input }) => ({ ...input, seq: 0, lastTMs: -1, lastIterations: 0, history: [] }),
  initial: 'active',
  states: {
    active: {
      after: { period: { target: 'active', reenter: true, actions: 'sample' } },
      on: {
        STATUS: {
          actions: [
            assign(({ context, event }) => {
              const history = [...context.history, [event.tMs, event.iterations] as [number, number]]
                .filter(([t]) => t >= event.tMs - RATE_WINDOW_MS);
              const [t0, i0] = history[0]!;
              const windowMs = Math.max(1, event.tMs - t0);
              const report: TrainingReport = {
                seq: context.seq + 1, tMs: event.tMs, windowMs, iterations: event.iterations,
                itersPerSec: history.length > 1 ? Math.max(0, ((event.iterations - i0) * 1000) / windowMs) : 0,
                state: event.state, mpsSharePct: event.mpsSharePct, pacing: event.pacing,
              };
              return { seq: report.seq, lastTMs: event.tMs, lastIterations: event.iterations, history, last: report };
            }),
            { type: 'report', params: ({ context }) => ({ report: context.last! }) },
          ],
        },
        SET_PACING: { actions: { type: 'apply', params: ({ event }) => ({ command: event }) } },
        SET_MPS_SHARE: { actions: { type: 'apply', params: ({ event }) => ({ command: event }) } },
        SET_RUNNING: { actions: { type: 'apply', params: ({ event }) => ({ command: event }) } },
        CHECKPOINT: 'migrated',
        STOP: 'stopped',
      },
    },
    stopped: { type: 'final', entry: 'release' },
    // Moved away: checkpointed and stopped here; not released, since it now runs on another GPU.
    migrated: { type: 'final', entry: 'checkpoint' },
  },
});
