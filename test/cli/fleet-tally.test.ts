import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetTally } from '../../cli/fleet-demo.ts';
import { SCHEMA_VERSION, type GpuStatusEvent } from '../../schemas/index.ts';

const status = (gpu: string, tMs: number, jobs: Array<[string, number]>): GpuStatusEvent => ({
  v: SCHEMA_VERSION, type: 'gpu.status', host: 'h', gpu, tMs, unixMs: tMs, policy: 'gpucolo', state: 'controlling',
  services: [], trainings: jobs.map(([jobId, iterations]) => ({ jobId, iterations, itersPerSec: 1, state: 'running' as const })),
  mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: jobs.length > 0, mpsChanges: 0, sleepChanges: 0,
});

test('demo tally - a GPU is credited the training iterations done on it, a moved job\'s on each GPU for its time there', () => {
  const t = new FleetTally();
  t.onStatus(status('gpu0', 1000, [['job', 5]]));
  t.onStatus(status('gpu0', 2000, [['job', 30]]));
  t.onStatus(status('gpu1', 2000, []));
  // The fleet moves the job: it restarts on gpu1 from its checkpoint (28) and trains on there.
  t.onStatus(status('gpu0', 3000, []));
  t.onStatus(status('gpu1', 3000, [['job', 28]]));
  t.onStatus(status('gpu1', 4000, [['job', 60]]));
  t.onStatus(status('gpu1', 5000, [['job', 90]]));
  assert.equal(t.iterations('h/gpu0'), 30, 'from 0 (new to the run) to 30');
  assert.equal(t.iterations('h/gpu1'), 62, 'from 28 (arrived with its checkpoint) to 90');
  assert.equal(t.iterations('h/gpu2'), 0);
  // A restart from an older checkpoint on the same GPU does not subtract: it counts on from there.
  t.onStatus(status('gpu1', 6000, [['job', 80]]));
  t.onStatus(status('gpu1', 7000, [['job', 85]]));
  assert.equal(t.iterations('h/gpu1'), 67);
});
