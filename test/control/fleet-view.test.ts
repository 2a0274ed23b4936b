import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewOf, type FleetStatusInput } from '../../control/index.ts';

const status = (p99Ms: number, meanMs: number): FleetStatusInput => ({
  host: 'h', gpu: 'g0', services: [{ serviceId: 'a', sloMs: 25, rateRps: 100, p99Ms, meanMs }], trainings: [{ jobId: 't' }],
});

test('viewOf - builds a new view and returns only the updated estimates; its arguments are left as they were', () => {
  const estimates = Object.freeze({ other: 7 });
  const first = viewOf(status(5, 3), undefined, estimates, 1000);
  assert.deepEqual(Object.keys(first.updated), ['a']);
  assert.equal(first.view.services[0]!.serviceMs, first.updated.a);
  assert.deepEqual(first.view.trainings, ['t']);
  const prev = structuredClone(first.view);
  const merged = { ...estimates, ...first.updated };
  const frozen = Object.freeze({ ...merged });
  const second = viewOf(status(15, 3), first.view, frozen, 2000);
  assert.deepEqual(first.view, prev, 'the previous view is not changed');
  assert.equal(second.view.services[0]!.p99Ms, 10, 'p99 smoothed with the previous view');
  assert.equal(second.view.seenMs, 2000);
  // Past the SLO the cost is not learnt; within it the estimate stays where it was.
  const late = viewOf(status(40, 30), second.view, { ...frozen, ...second.updated }, 3000);
  assert.deepEqual(late.updated, {});
  assert.equal(late.view.services[0]!.serviceMs, second.view.services[0]!.serviceMs);
});
