import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  attainment,
  LatencyAccumulator,
  mergeWindows,
  mergeWindowsByService,
  nearestRank,
  summarize,
} from '../../control/index.ts';

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const shuffled = (xs: number[]) => xs.map((x, i) => ({ x, k: (i * 7919) % 101 })).sort((a, b) => a.k - b.k).map((e) => e.x);

test('control - nearest-rank percentiles on known data', () => {
  const w = summarize('s', 90, shuffled(range(1, 100)), 50, 500);
  assert.equal(w.count, 100);
  assert.equal(w.p50Ms, 50);
  assert.equal(w.p95Ms, 95);
  assert.equal(w.p99Ms, 99);
  assert.equal(w.maxMs, 100);
  assert.equal(w.meanMs, 50.5);
  assert.equal(w.rateRps, 100);
  assert.equal(w.windowMs, 500);

  const ten = summarize('s', 90, range(1, 10).reverse(), 10, 1000);
  assert.equal(ten.p50Ms, 5);
  assert.equal(ten.p95Ms, 10, 'ceil(0.95*10) = 10th sample');
  assert.equal(ten.p99Ms, 10);

  assert.equal(nearestRank([3, 7, 9], 0), 3, 'rank floors at the first sample');
  assert.equal(nearestRank([3, 7, 9], 34), 7);
  assert.equal(nearestRank([], 99), 0);
});

test('control - empty window has count 0 and zero latencies', () => {
  const w = summarize('s', 90, [], 3, 200);
  assert.deepEqual(
    [w.count, w.meanMs, w.p50Ms, w.p95Ms, w.p99Ms, w.maxMs],
    [0, 0, 0, 0, 0, 0],
  );
  assert.equal(w.rateRps, 15);
  assert.equal(summarize('s', 90, [1], 1, 0).rateRps, 0, 'zero-length window has no rate');
});

test('control - merging identical windows returns their percentiles exactly', () => {
  const a = summarize('s', 90, range(1, 100), 100, 1000);
  const m = mergeWindows([a, a, a]);
  assert.equal(m.count, 300);
  assert.equal(m.windowMs, 3000);
  assert.equal(m.rateRps, 100);
  assert.equal(m.meanMs, a.meanMs);
  assert.equal(m.maxMs, a.maxMs);
  for (const k of ['p50Ms', 'p95Ms', 'p99Ms'] as const) assert.ok(Math.abs(m[k] - a[k]) < 1e-9, `${k} ${m[k]} vs ${a[k]}`);
});

test('control - merged percentiles are the exact quantiles of the rebuilt mixture, a jump in a CDF included', () => {
  const w = (count: number, p50Ms: number, p95Ms: number, p99Ms: number, maxMs: number) => ({
    serviceId: 's', sloMs: 90, count, meanMs: p50Ms, p50Ms, p95Ms, p99Ms, maxMs, rateRps: count, windowMs: 1000,
  });
  // Knots (0, 10, 20, 20, 30): the CDF jumps from 0.95 to 0.99 at 20, where both the p95 and the p99 are.
  const a = w(1, 10, 20, 20, 30);
  const one = mergeWindows([a]);
  assert.deepEqual([one.p50Ms, one.p95Ms, one.p99Ms], [10, 20, 20]);
  // With b (knots 30, 40, 50, 60, 70) three times as heavy, the mixture is (F_a + 3 F_b) / 4, linear between knots:
  // 0.25 at 30 and 0.625 at 40 (p50 at 36.67), 0.9625 at 50 (p95 at 49.63), 0.9925 at 60 (p99 at 59.17).
  const m = mergeWindows([a, w(3, 40, 50, 60, 70)]);
  const near = (x: number, want: number) => assert.ok(Math.abs(x - want) < 1e-9, `${x} vs ${want}`);
  near(m.p50Ms, 30 + (0.25 / 0.375) * 10);
  near(m.p95Ms, 40 + (0.325 / 0.3375) * 10);
  near(m.p99Ms, 50 + (0.0275 / 0.03) * 10);
});

test('control - merged percentiles approximate the pooled samples', () => {
  const a = summarize('s', 90, range(1, 100), 100, 1000);
  const b = summarize('s', 90, range(101, 200), 300, 1000);
  const m = mergeWindows([a, b]);
  const pooled = summarize('s', 90, range(1, 200), 400, 2000);
  assert.equal(m.count, 200);
  assert.equal(m.meanMs, pooled.meanMs, 'mean is exact');
  assert.equal(m.rateRps, 200, 'rate is exact: 400 arrivals over 2 s');
  assert.equal(m.maxMs, 200);
  assert.ok(Math.abs(m.p99Ms - pooled.p99Ms) <= 2, `p99 ${m.p99Ms} vs pooled ${pooled.p99Ms}`);
  assert.ok(Math.abs(m.p95Ms - pooled.p95Ms) <= 4, `p95 ${m.p95Ms} vs pooled ${pooled.p95Ms}`);
  assert.ok(Math.abs(m.p50Ms - pooled.p50Ms) <= 2, `p50 ${m.p50Ms} vs pooled ${pooled.p50Ms}`);
  // Between the inputs, unlike the max of the p99s (199) or their mean (149).
  assert.ok(m.p99Ms > 190 && m.p99Ms < 199);
});

test('control - merging skips empty windows but keeps their time and arrivals', () => {
  const a = summarize('s', 90, [10, 20, 30], 3, 1000);
  const e = summarize('s', 80, [], 1, 1000);
  const m = mergeWindows([a, e]);
  assert.equal(m.count, 3);
  assert.equal(m.meanMs, 20);
  assert.equal(m.rateRps, 2);
  assert.equal(m.sloMs, 80, 'the smallest SLO is kept');
  assert.equal(mergeWindows([e, e]).count, 0);
  assert.throws(() => mergeWindows([]), RangeError);
});

test('control - mergeWindowsByService groups per service in first-seen order', () => {
  const x = summarize('x', 50, [10], 1, 200);
  const y = summarize('y', 90, [80], 1, 200);
  const out = mergeWindowsByService([x, y, x, y, y]);
  assert.deepEqual(out.map((w) => [w.serviceId, w.count, w.windowMs]), [['x', 2, 400], ['y', 3, 600]]);
});

test('control - attainment counts windows at or under the SLO, empty ones as met', () => {
  const mk = (lat: number[]) => summarize('s', 90, lat, lat.length, 200);
  const ws = [mk([80]), mk([95]), mk([]), mk([90])];
  assert.equal(attainment(ws), 0.75);
  assert.equal(attainment(ws, 'mean'), 0.75);
  const meanOnly = [mk([10, 10, 10, 10, 10, 10, 10, 10, 10, 300])];
  assert.equal(attainment(meanOnly, 'p99'), 0, 'tail violates');
  assert.equal(attainment(meanOnly, 'mean'), 1, 'mean (39 ms) meets');
  assert.equal(attainment([]), 1);
});

test('control - accumulator summarises a window and starts afresh', () => {
  const acc = new LatencyAccumulator('s', 90);
  acc.add(5);
  acc.addMany([1, 3]);
  acc.arrive(4);
  assert.equal(acc.count, 3);
  const w = acc.take(200);
  assert.equal(w.count, 3);
  assert.equal(w.p50Ms, 3);
  assert.equal(w.maxMs, 5);
  assert.equal(w.rateRps, 20);
  const next = acc.take(200);
  assert.equal(next.count, 0);
  assert.equal(next.rateRps, 0);
});
