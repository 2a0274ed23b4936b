import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeGpu } from '../../cli/demo.ts';
import { FleetTally } from '../../cli/fleet-demo.ts';
import { SCHEMA_VERSION, type GpuStatusEvent } from '../../schemas/index.ts';

function status(gpu: string, tMs: number, services: GpuStatusEvent['services']): GpuStatusEvent {
  return {
    v: SCHEMA_VERSION, type: 'gpu.status', host: 'h', gpu, tMs, unixMs: 0, policy: 'gpucolo', state: 'controlling', services, trainings: [],
    mpsSharePct: 15, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: true, mpsChanges: 0, sleepChanges: 0,
  };
}
const svc = (windows: number, met: number): GpuStatusEvent['services'][number] => ({ serviceId: 's', sloMs: 25, p99Ms: 9, meanMs: 5, rateRps: 100, runP99Ms: 11.5, sloWindows: windows, sloWindowsMet: met });

test('demo summary - a GPU whose service the fleet moved away shows no SLO or p99, and the attainment of what it served', () => {
  const tally = new FleetTally();
  tally.onStatus(status('gpu0', 10_000, [svc(10, 9)]));
  const moved = status('gpu0', 60_000, []);
  tally.onStatus(moved);
  const g = summarizeGpu(moved, tally);
  assert.equal(g.servicesAtEnd, 0);
  assert.equal(g.sloMs, null, 'no SLO 0');
  assert.equal(g.p99Ms, null, 'no p99 0.00');
  assert.equal(g.attainment, 0.9, 'what it served before the move, not 1');
  // A GPU that never served has no attainment to claim.
  const never = status('gpu1', 60_000, []);
  tally.onStatus(never);
  assert.equal(summarizeGpu(never, tally).attainment, null);
  // A GPU serving at the end is summarised as before.
  const serving = status('gpu2', 60_000, [svc(50, 50)]);
  tally.onStatus(serving);
  assert.deepEqual({ ...summarizeGpu(serving, tally) }, { id: 'h/gpu2', servicesAtEnd: 1, sloMs: 25, p99Ms: 11.5, attainment: 1, trainingItersPerSec: 0, mpsChanges: 0, sleepChanges: 0 });
});
