import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGslice, createPolicy, isPolicyName, POLICY_NAMES, summarize } from '../../control/index.ts';
import type { ControlInput, Knobs, LatencyWindow } from '../../control/index.ts';
import { defaultPlant, simulate } from './plant.ts';

const merged = (p99Ms: number): LatencyWindow => summarize('svc', 90, Array(100).fill(p99Ms), 100, 25_000);
const input = (w: LatencyWindow, knobs: Knobs, running = true): ControlInput => ({
  nowMs: 25_000,
  services: [w],
  trainings: [{ jobId: 't', itersPerSec: 1, running }],
  knobs,
});

test('control - createPolicy builds every named policy', () => {
  for (const name of POLICY_NAMES) {
    const p = createPolicy(name);
    assert.equal(p.name, name);
    assert.ok(p.innerPeriodMs > 0);
    assert.ok(p.outerPeriodMs >= p.innerPeriodMs);
    const k = p.initialKnobs();
    assert.ok(k.mpsSharePct >= 1 && k.mpsSharePct <= 100);
  }
  assert.ok(isPolicyName('gslice'));
  assert.ok(isPolicyName('gpucolo-paper-p99'));
  assert.equal((createPolicy('gpucolo-paper-p99') as ReturnType<typeof createPolicy> & { options: { metric: string } }).options.metric, 'p99', 'the paper\'s laws on p99');
  assert.throws(() => createPolicy('nope' as never), RangeError);
});

test('control - gslice moves only the MPS share, only on its 25 s period', () => {
  const spec = defaultPlant({ seed: 2, services: [{ id: 'svc', sloMs: 90, baseMs: 25, loadCoef: 0.5, rate: (t) => (t < 150_000 ? 100 : 180) }] });
  const p = createPolicy('gslice');
  assert.equal(p.outerPeriodMs, 25_000);
  const r = simulate(p, spec, { durationMs: 400_000 });
  assert.ok(r.timeline.length >= 2, 'it does adapt');
  for (const { tMs, d } of r.timeline) {
    assert.equal(d.tier, 'outer');
    assert.equal(d.knob, 'mpsSharePct');
    assert.equal(tMs % 25_000, 0, `decision at ${tMs}`);
  }
  assert.ok(r.ticks.every((t) => t.knobs.pacing.mode === 'per-iteration' && t.knobs.pacing.sleepMs === 0), 'never sleeps');
  // After the load rises it gives training less.
  const shareBefore = r.ticks.find((t) => t.tMs === 150_000)!.knobs.mpsSharePct;
  assert.ok(r.finalKnobs.mpsSharePct < shareBefore, `${shareBefore} -> ${r.finalKnobs.mpsSharePct}`);
});

test('control - gslice rule: step proportional to the error, with a deadband', () => {
  const p = createGslice();
  const k: Knobs = { mpsSharePct: 50, pacing: { mode: 'per-iteration', sleepMs: 0 }, trainingRunning: true };
  assert.deepEqual(p.inner({}, input(merged(200), k)).decisions, [], 'inner never acts');
  assert.deepEqual(p.outer({}, input(merged(87), k)).decisions, [], '3% under the SLO: deadband');
  assert.deepEqual(p.outer({}, input(merged(94), k)).decisions, [], '4% over: deadband');
  const small = p.outer({}, input(merged(99), k)); // 10% over
  const big = p.outer({}, input(merged(108), k)); // 20% over
  assert.equal(small.knobs.mpsSharePct, 40);
  assert.equal(big.knobs.mpsSharePct, 30);
  assert.equal(small.decisions[0]!.reason, 'p99 above target: lower MPS share');
  assert.equal(p.outer({}, input(merged(45), k)).knobs.mpsSharePct, 75, 'capped at maxStepPct');
  assert.equal(p.outer({}, input(merged(500), { ...k, mpsSharePct: 3 })).knobs.mpsSharePct, 1, 'floor 1%');
  assert.deepEqual(p.outer({}, input(merged(200), k, false)).decisions, [], 'holds while training restarts');
});

test('control - fixed baselines never move and restore their setting', () => {
  const spec = defaultPlant({ seed: 3, services: [{ id: 'svc', sloMs: 90, baseMs: 25, loadCoef: 0.5, rate: (t) => (t < 30_000 ? 50 : 400) }] });
  const expected = { simple: [50, true], conservative: [25, true], 'no-colocation': [100, false] } as const;
  for (const [name, [share, running]] of Object.entries(expected)) {
    const p = createPolicy(name as keyof typeof expected);
    assert.equal(p.outerPeriodMs, Number.POSITIVE_INFINITY);
    const r = simulate(p, spec, { durationMs: 60_000 });
    assert.deepEqual(r.decisions, [], `${name} never moves`);
    assert.ok(r.ticks.every((t) => t.knobs.mpsSharePct === share && t.knobs.trainingRunning === running));
    assert.ok(r.ticks.every((t) => t.knobs.pacing.mode === 'per-iteration' && t.knobs.pacing.sleepMs === 0));
    // Found elsewhere (e.g. after a safety override), it puts its knobs back and says so.
    const moved: Knobs = { mpsSharePct: 77, pacing: { mode: 'duty', duty: 1, periodMs: 50 }, trainingRunning: !running };
    const back = p.inner({}, input(merged(50), moved));
    assert.equal(back.knobs.mpsSharePct, share);
    assert.equal(back.knobs.trainingRunning, running);
    assert.deepEqual(back.decisions.map((d) => d.knob).sort(), ['mpsSharePct', 'pacing', 'trainingRunning']);
    assert.ok(back.decisions.every((d) => d.reason === 'restore fixed setting'));
  }
  assert.equal(createPolicy('simple', { sharePct: 60 }).initialKnobs().mpsSharePct, 60);
});
