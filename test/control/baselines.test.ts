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

test('control - gslice moves only the MPS shares (inference\'s, training gets the rest), only on its 25 s period', () => {
  const spec = defaultPlant({ seed: 2, services: [{ id: 'svc', sloMs: 90, baseMs: 25, loadCoef: 0.5, rate: (t) => (t < 150_000 ? 100 : 180) }] });
  const p = createPolicy('gslice');
  assert.equal(p.outerPeriodMs, 25_000);
  assert.deepEqual(p.initialKnobs(), { mpsSharePct: 50, inferenceSharePct: 50, pacing: { mode: 'per-iteration', sleepMs: 0 }, trainingRunning: true });
  const r = simulate(p, spec, { durationMs: 400_000 });
  assert.ok(r.timeline.length >= 2, 'it does adapt');
  for (const { tMs, d } of r.timeline) {
    assert.equal(d.tier, 'outer');
    assert.equal(d.knob, 'mpsSharePct');
    assert.equal(tMs % 25_000, 0, `decision at ${tMs}`);
    assert.equal(d.newValue + d.terms['inferenceSharePct']!, 100, 'training gets what inference leaves');
  }
  assert.ok(r.ticks.every((t) => t.knobs.pacing.mode === 'per-iteration' && t.knobs.pacing.sleepMs === 0), 'never sleeps');
  assert.ok(r.ticks.every((t) => t.knobs.mpsSharePct + t.knobs.inferenceSharePct! === 100), 'the shares always add up to 100');
  // After the load rises it gives inference more and training less.
  const before = r.ticks.find((t) => t.tMs === 150_000)!.knobs;
  assert.ok(r.finalKnobs.inferenceSharePct! > before.inferenceSharePct!, `${before.inferenceSharePct} -> ${r.finalKnobs.inferenceSharePct}`);
  assert.ok(r.finalKnobs.mpsSharePct < before.mpsSharePct, `${before.mpsSharePct} -> ${r.finalKnobs.mpsSharePct}`);
});

test('control - gslice rule: inference share steps proportional to the error, with a deadband; training gets the rest', () => {
  const p = createGslice();
  const k: Knobs = { mpsSharePct: 50, inferenceSharePct: 50, pacing: { mode: 'per-iteration', sleepMs: 0 }, trainingRunning: true };
  const shares = (knobs: Knobs) => [knobs.inferenceSharePct, knobs.mpsSharePct];
  assert.deepEqual(p.inner({}, input(merged(200), k)).decisions, [], 'inner never acts');
  assert.deepEqual(p.outer({}, input(merged(87), k)).decisions, [], '3% under the SLO: deadband');
  assert.deepEqual(p.outer({}, input(merged(94), k)).decisions, [], '4% over: deadband');
  const small = p.outer({}, input(merged(99), k)); // 10% over
  const big = p.outer({}, input(merged(108), k)); // 20% over
  assert.equal(p.options.gainPct, 50);
  assert.deepEqual(shares(small.knobs), [55, 45]);
  assert.deepEqual(shares(big.knobs), [60, 40]);
  assert.equal(small.decisions[0]!.reason, 'p99 above target: raise inference MPS share, training gets the rest');
  assert.deepEqual(small.decisions.map((d) => [d.knob, d.oldValue, d.newValue, d.terms['inferenceSharePct'], d.terms['oldInferenceSharePct']]), [['mpsSharePct', 50, 45, 55, 50]]);
  const slack = p.outer({}, input(merged(20), k)); // 78% under: the smallest share that meets the target is lower
  assert.deepEqual(shares(slack.knobs), [25, 75], 'capped at maxStepPct');
  assert.equal(slack.decisions[0]!.reason, 'p99 below target: lower inference MPS share, training gets the rest');
  assert.deepEqual(shares(p.outer({}, input(merged(500), { ...k, inferenceSharePct: 97, mpsSharePct: 3 })).knobs), [99, 1], 'training keeps at least 1%');
  assert.deepEqual(shares(p.outer({}, input(merged(10), { ...k, inferenceSharePct: 5, mpsSharePct: 95 })).knobs), [1, 99], 'inference at least 1%');
  // Knobs without an inference share (uncapped inference) start from 100.
  assert.deepEqual(shares(p.outer({}, input(merged(45), { ...k, inferenceSharePct: undefined })).knobs), [75, 25]);
  assert.deepEqual(p.outer({}, input(merged(200), k, false)).decisions, [], 'holds while training restarts');
  const margin = createGslice({ marginPct: 10, initialInferenceSharePct: 70 });
  assert.deepEqual(shares(margin.initialKnobs()), [70, 30]);
  assert.deepEqual(margin.outer({}, input(merged(85), k)).decisions, [], 'target 81 ms: 85 ms is within the deadband');
  assert.deepEqual(shares(margin.outer({}, input(merged(90), k)).knobs), [56, 44], 'target 81 ms: 90 ms is 11% late');
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
