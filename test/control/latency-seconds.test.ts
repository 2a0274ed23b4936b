import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addToHistogram, addToSeconds, emptySecondWindows, histogramQuantile, percentile } from '../../control/index.ts';

test('latency seconds - attainment counts whole 1 s windows whose p99 is within the SLO', () => {
  let s = emptySecondWindows();
  // Second 0: 100 requests at 10 ms, one at 80 ms -> p99 (nearest rank 100 of 101) is 10 ms: met.
  const sec0 = Array.from({ length: 100 }, (_, i) => ({ tMs: i * 9, latencyMs: 10 }));
  s = addToSeconds(s, [...sec0, { tMs: 950, latencyMs: 80 }], 999, 20);
  assert.equal(s.windows, 0, 'a second is closed only once time has passed it');
  // Second 1: 10 requests, 2 slow -> p99 is 80 ms: missed. Second 2: nothing finished -> met.
  const sec1 = Array.from({ length: 10 }, (_, i) => ({ tMs: 1000 + i * 50, latencyMs: i < 2 ? 80 : 10 }));
  s = addToSeconds(s, sec1, 3000, 20);
  assert.equal(s.windows, 3);
  assert.equal(s.windowsMet, 2);
});

test('latency seconds - percentiles and the run histogram', () => {
  const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 0.99), 990);
  assert.equal(percentile([], 0.99), 0);
  const h = addToHistogram({}, xs);
  const p99 = histogramQuantile(h, 0.99);
  assert.ok(p99 >= 990 && p99 <= 990 * 1.02, `histogram p99 ${p99} is within one 1% bucket above the exact 990`);
});
