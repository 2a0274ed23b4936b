import { assign, setup, type PromiseActorLogic } from 'xstate';

export interface HostInput {
  host: string;
  gpus: string[];
  backend: string;
}

/**
 * A host runner's lifecycle: start the GPU, inference and training actors (provided `startActors`),
 * run, and on STOP release every training job and stop them (provided `stopActors`). Lifecycle events
 * go out through the provided `announce` action.
 */
export const hostMachine = setup({
  types: {
    context: {} as HostInput & { error?: string },
    events: {} as { type: 'STOP' },
    input: {} as HostInput,
  },
  actions: {
    announce: (_args, _params: { state: 'started' | 'stopping' | 'stopped' }) => {},
  },
  actors: {
    // Placeholders; the runner provides the real ones.
    startActors: null as unknown as PromiseActorLogic<void>,
    stopActors: null as unknown as PromiseActorLogic<void>,
  },
}).createMachine({
  id: 'host',
  context: ({ input }) => ({ ...input }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'startActors',
        onDone: 'running',
        onError: { target: 'stopping', actions: assign({ error: ({ event }) => String((event.error as Error)?.message ?? event.error) }) },
      },
      on: { STOP: 'stopping' },
    },
    running: {
      entry: { type: 'announce', params: { state: 'started' } },
      on: { STOP: 'stopping' },
    },
    stopping: {
      entry: { type: 'announce', params: { state: 'stopping' } },
      invoke: { src: 'stopActors', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: {
      type: 'final',
      entry: { type: 'announce', params: { state: 'stopped' } },
    },
  },
});
