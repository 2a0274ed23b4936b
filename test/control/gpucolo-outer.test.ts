import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGpucolo, summarize } from '../../control/index.ts';
import type { ControlInput, GpucoloState, Knobs, LatencyWindow } from '../../control/index.ts';
import { between, defaultPlant, pacingOf, simulate, type ServiceSpec, PER_WINDOW_GPUCOLO } from './plant.ts';

const svc = (rate: (t: number) => number): ServiceSpec => ({ id: 'svc', sloMs: 90, baseMs: 25, loadCoef: 0.5, rate });
const merged = (p99Ms: number): LatencyWindow => summarize('svc', 90, Array(100).fill(p99Ms), 100, 5_000);
const knobs = (share: number, duty: number): Knobs => ({
  mpsSharePct: share,
  pacing: { mode: 'duty', duty, periodMs: 50 },
  trainingRunning: true,
});
const input = (nowMs: number, w: LatencyWindow, k: Knobs, running = true): ControlInput => ({
  nowMs,
  services: [w],
  trainings: [{ jobId: 't', itersPerSec: 1, running }],
  knobs: k,
});
const NOW = 1_000_000;

test('control - gpucolo outer lowers the share only after the high dwell', () => {
  const p = createGpucolo(PER_WINDOW_GPUCOLO);
  const base: GpucoloState = { ...p.initialState(), duty: 0.95 };
  const early = p.outer({ ...base, highSinceMs: NOW - 9_000 }, input(NOW, merged(85), knobs(50, 0.95)));
  assert.deepEqual(early.decisions, []);
  assert.equal(early.knobs.mpsSharePct, 50);
  const due = p.outer({ ...base, highSinceMs: NOW - 10_000 }, input(NOW, merged(85), knobs(50, 0.95)));
  assert.equal(due.knobs.mpsSharePct, 40);
  const d = due.decisions[0]!;
  assert.equal(d.tier, 'outer');
  assert.equal(d.knob, 'mpsSharePct');
  assert.equal(d.reason, 'inner saturated high for 10s: lower MPS share');
  assert.deepEqual([d.oldValue, d.newValue, d.terms.stepPct], [50, 40, -10]);
  assert.equal(due.state.lastMpsChangeMs, NOW);
  assert.equal(due.state.highSinceMs, null, 'the restart resets the dwell timers');
  // Never below minSharePct.
  const floor = p.outer({ ...base, highSinceMs: NOW - 60_000 }, input(NOW, merged(85), knobs(10, 0.95)));
  assert.deepEqual(floor.decisions, []);
});

test('control - gpucolo outer respects the minimum dwell between MPS changes', () => {
  const p = createGpucolo(PER_WINDOW_GPUCOLO);
  const s: GpucoloState = { ...p.initialState(), duty: 0.95, highSinceMs: NOW - 60_000, lastMpsChangeMs: NOW - 29_999 };
  assert.deepEqual(p.outer(s, input(NOW, merged(85), knobs(50, 0.95))).decisions, []);
  assert.equal(p.outer({ ...s, lastMpsChangeMs: NOW - 30_000 }, input(NOW, merged(85), knobs(50, 0.95))).knobs.mpsSharePct, 40);
  // Training still restarting: no decision either.
  assert.deepEqual(p.outer({ ...s, lastMpsChangeMs: null }, input(NOW, merged(85), knobs(50, 0.95), false)).decisions, []);
});

test('control - gpucolo outer raises only with slack, below a recent ceiling, with a bumpless duty handoff', () => {
  const p = createGpucolo(PER_WINDOW_GPUCOLO);
  const low: GpucoloState = { ...p.initialState(), duty: 0.05, lowSinceMs: NOW - 30_000 };
  // Slack is 20% under the 81 ms target: 64.8 ms.
  assert.deepEqual(p.outer(low, input(NOW, merged(70), knobs(40, 0.05))).decisions, [], 'no slack on the outer window');
  assert.deepEqual(p.outer({ ...low, lowSinceMs: NOW - 29_000 }, input(NOW, merged(40), knobs(40, 0.05))).decisions, []);
  const up = p.outer(low, input(NOW, merged(40), knobs(40, 0.05)));
  assert.equal(up.knobs.mpsSharePct, 45);
  assert.deepEqual(up.decisions.map((d) => [d.knob, d.reason]), [
    ['mpsSharePct', 'inner idle with slack for 30s: raise MPS share'],
    ['pacing', 'bumpless handoff after MPS raise'],
  ]);
  // (1 - duty) * share is kept: 0.95 * 40 / 45.
  const handoff = up.knobs.pacing.mode === 'duty' ? up.knobs.pacing.duty : NaN;
  assert.ok(Math.abs((1 - handoff) * 45 - 0.95 * 40) < 0.01, `handoff duty ${handoff}`);

  // A share that saturated the inner tier is a ceiling for ceilingHoldMs.
  const ceiling: GpucoloState = { ...low, ceilingPct: 50, ceilingUntilMs: NOW + 1 };
  assert.deepEqual(p.outer(ceiling, input(NOW, merged(40), knobs(45, 0.05))).decisions, [], '45 -> 50 refused');
  assert.equal(p.outer(ceiling, input(NOW, merged(40), knobs(40, 0.05))).knobs.mpsSharePct, 45, '40 -> 45 allowed');
  assert.equal(p.outer(ceiling, input(NOW + 1, merged(40), knobs(45, 0.05))).knobs.mpsSharePct, 50, 'expired');
});

test('control - gpucolo outer: an unmeetable load walks the share down, dwell by dwell, then stops', () => {
  const spec = defaultPlant({ k: 8, seed: 4, services: [svc(() => 250)] });
  const p = createGpucolo({ ...PER_WINDOW_GPUCOLO, initialSharePct: 100 });
  const r = simulate(p, spec, { durationMs: 600_000 });
  const mps = r.timeline.filter((x) => x.d.knob === 'mpsSharePct');
  assert.ok(mps.length >= 3, `${mps.length} MPS changes`);
  assert.ok(mps.every((x) => x.d.newValue < x.d.oldValue), 'only decreases');
  assert.ok(mps[0]!.tMs >= p.options.highDwellMs, 'not before the first high dwell');
  for (let i = 1; i < mps.length; i++) assert.ok(mps[i]!.tMs - mps[i - 1]!.tMs >= p.options.minMpsDwellMs);
  // The inner tier holds still while training restarts after each change.
  for (const m of mps) {
    const during = r.timeline.filter((x) => x.d.tier === 'inner' && x.tMs > m.tMs && x.tMs < m.tMs + spec.restartMs);
    assert.deepEqual(during, [], `inner moved during the restart after ${m.tMs}`);
  }
  // The share came down far enough for the inner tier to unsaturate, and then stayed.
  const last = between(r.ticks, 400_000, 600_000);
  const meanDuty = last.reduce((a, t) => a + pacingOf(t), 0) / last.length;
  assert.ok(meanDuty < p.options.highBound && meanDuty > 0.5, `inner tier no longer saturated (mean duty ${meanDuty})`);
  assert.ok(mps.at(-1)!.tMs < 400_000, 'no MPS change in the last 200 s');
  const w = between(r.ticks, 300_000, 600_000).map((t) => t.windows[0]!);
  assert.ok(w.filter((x) => x.p99Ms <= 90).length / w.length >= 0.99);
});

test('control - gpucolo outer: slack raises the share step by step and then holds', () => {
  const spec = defaultPlant({ k: 2, seed: 6, services: [svc(() => 100)] });
  const p = createGpucolo({ ...PER_WINDOW_GPUCOLO, initialSharePct: 20, initialDuty: 0 });
  const r = simulate(p, spec, { durationMs: 600_000 });
  const mps = r.timeline.filter((x) => x.d.knob === 'mpsSharePct');
  assert.ok(mps.length >= 1 && mps.every((x) => x.d.newValue === x.d.oldValue + 5), 'raises of 5 points');
  assert.ok(mps[0]!.tMs >= p.options.lowDwellMs);
  for (let i = 1; i < mps.length; i++) assert.ok(mps[i]!.tMs - mps[i - 1]!.tMs >= p.options.minMpsDwellMs);
  for (const m of mps) assert.ok(r.timeline.some((x) => x.tMs === m.tMs && x.d.reason === 'bumpless handoff after MPS raise'));
  assert.ok(mps.at(-1)!.tMs < 300_000, 'settled: no change in the last 300 s');
  assert.ok(r.finalKnobs.mpsSharePct > 20);
  const w = between(r.ticks, 0, 600_000).map((t) => t.windows[0]!);
  assert.ok(w.filter((x) => x.p99Ms <= 90).length / w.length >= 0.995);
});

test('control - gpucolo outer under a square-wave load: dwell always respected, no flip back to a saturated share', () => {
  // 90 s of light load (slack at any share) then 90 s of load no share above ~28% can serve, and again.
  const rate = (t: number) => (Math.floor(t / 90_000) % 2 === 0 ? 20 : 300);
  const spec = defaultPlant({ k: 2, seed: 8, services: [{ id: 'svc', sloMs: 90, baseMs: 10, loadCoef: 2, rate }] });
  const p = createGpucolo({ ...PER_WINDOW_GPUCOLO, initialSharePct: 60 });
  const r = simulate(p, spec, { durationMs: 1_200_000 });
  const mps = r.timeline.filter((x) => x.d.knob === 'mpsSharePct');
  const raises = mps.filter((x) => x.d.newValue > x.d.oldValue).length;
  assert.ok(raises >= 2 && mps.length - raises >= 2, `${raises} raises of ${mps.length} changes: both directions exercised`);
  for (let i = 1; i < mps.length; i++) assert.ok(mps[i]!.tMs - mps[i - 1]!.tMs >= p.options.minMpsDwellMs);
  for (const [i, m] of mps.entries()) {
    if (m.d.newValue >= m.d.oldValue) continue;
    const flipBack = mps.slice(i + 1).find((x) => x.tMs < m.tMs + p.options.ceilingHoldMs && x.d.newValue >= m.d.oldValue);
    assert.equal(flipBack, undefined, `share ${m.d.oldValue} came back within the ceiling hold`);
  }
  assert.ok(mps.length <= 1_200_000 / p.options.minMpsDwellMs / 2, `${mps.length} changes is too many`);
});
