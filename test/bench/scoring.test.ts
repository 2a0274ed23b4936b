import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attainment, score } from '../../bench/control/metrics.ts';
import { oracleStatic, attainmentFloor } from '../../bench/control/oracle.ts';
import { scenario } from '../../bench/control/scenarios.ts';
import { runFixed, simulate, trainingAloneItersPerSec, type RunResult, type SecondRow } from '../../bench/control/simulate.ts';

const row = (t: number, count: number, p99Ms: number, waiting: boolean): SecondRow => ({
  t, count, p99Ms, meanMs: p99Ms, waiting, rateRps: count, sleepDuty: 0, mpsSharePct: 25, trainingRunning: true, itersPerSec: 1,
});
const runOf = (seconds: SecondRow[]): RunResult => ({
  policy: 'x', scenario: 'x', profile: 'x', sloMs: 10, durationS: seconds.length, seconds, completions: 0, mpsRestarts: 0,
  sleepChanges: 0, inferenceRestarts: 0, iterations: seconds.length, gpus: 1,
});

test('scoring - a second in which requests waited but none finished is missed; an idle second is not scored; the warm-up is scored for nobody', () => {
  const seconds = [row(0, 0, 0, true), row(1, 10, 5, false), row(2, 0, 0, true), row(3, 0, 0, false), row(4, 10, 20, false)];
  // From t = 1: seconds 1 (met), 2 (waited, nothing finished: missed), 3 (idle: unscored), 4 (missed).
  assert.equal(attainment(runOf(seconds), 1), 1 / 3);
  const sc = score(runOf(seconds), [], undefined, undefined, 1);
  assert.equal(sc.windows, 3);
  assert.equal(sc.trainingItersPerSec, 1, 'training counted from the warm-up on');
  // Without the warm-up the first second (waiting) counts too.
  assert.equal(attainment(runOf(seconds), 0), 1 / 4);
});

test('scoring - the fixed runner scores a fixed setting exactly as the policy loop does', () => {
  const s = { ...scenario('rate-2x'), durationS: 120 };
  const viaPolicy = simulate(s, 'conservative', 3);
  const viaFixed = runFixed(s, { mpsSharePct: 25, pacing: { mode: 'per-iteration', sleepMs: 0 }, trainingRunning: true }, 3, 'conservative')!;
  assert.deepEqual(viaFixed.seconds, viaPolicy.seconds);
  assert.equal(viaFixed.iterations, viaPolicy.iterations);
  // A miss budget stops a run that cannot meet it, and only such a run.
  const tooMany = runFixed(s, { mpsSharePct: 100, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: true }, 3, 'x', { missBudget: 2 });
  assert.equal(tooMany, null);
});

test('scoring - oracle-static is the best fixed grid setting that meets the floor (checked against the whole duty-0 column)', () => {
  const s = { ...scenario('rate-2x'), durationS: 150, schedule: [{ tS: 0, rateRps: 150, batch: 2 }] };
  const ref = simulate(s, 'no-colocation', 2);
  const floor = attainmentFloor(ref);
  const { run } = oracleStatic(s, 2, ref, trainingAloneItersPerSec(s.profile, 2));
  assert.ok(attainment(run) >= floor);
  for (let share = 5; share <= 100; share += 5) {
    const r = runFixed(s, { mpsSharePct: share, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: true }, 2, 'grid')!;
    if (attainment(r) >= floor) assert.ok(score(run, []).trainingItersPerSec >= score(r, []).trainingItersPerSec - 1e-9, `share ${share} beats the oracle`);
  }
});
