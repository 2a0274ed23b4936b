import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGpucolo, summarize } from '../../control/index.ts';
import type { ControlInput, GpucoloState, Knobs, LatencyWindow } from '../../control/index.ts';
import { budgetLeft, fitExponent, interferenceAgainst } from '../../control/gpucolo-outer.ts';
import { emptyModel, readableAbove, readS0 } from '../../control/gpucolo-service.ts';
import { score } from '../../bench/control/metrics.ts';
import { attainmentFloor } from '../../bench/control/oracle.ts';
import { loadSteps, scenario, type Scenario } from '../../bench/control/scenarios.ts';
import { simulate, type RunResult } from '../../bench/control/simulate.ts';
import { matrixLoads } from '../../bench/control/loads.ts';
import { loadProfile } from '../../gpu/model/index.ts';

const HOUR = 3_600_000;
const input = (nowMs: number, services: LatencyWindow[], knobs: Knobs, running = true): ControlInput => ({
  nowMs, services, trainings: [{ jobId: 't', itersPerSec: running ? 1 : 0, running }], knobs,
});

test('control - gpucolo outer: the restart budget allows the first move at once, then 12 an hour, a safety move included', () => {
  const p = createGpucolo();
  const o = p.options;
  const s: GpucoloState = { ...p.initialState(), startMs: 0 };
  assert.equal(budgetLeft(o, s, 60_000), 1, 'the initial share is a guess: one move at once');
  const once = { ...s, restarts: 1, restartTimesMs: [60_000] };
  assert.equal(budgetLeft(o, once, 120_000), 0, 'then none before 12 per hour of run allow a second');
  assert.equal(budgetLeft(o, once, 600_000), 1, '10 minutes in: two in all');
  const busy = { ...s, restarts: 12, restartTimesMs: Array.from({ length: 12 }, (_, i) => 3 * HOUR + i * 60_000) };
  assert.equal(budgetLeft(o, busy, 3 * HOUR + 30 * 60_000), 0, 'never a 13th in any hour');
  assert.equal(budgetLeft(o, { ...busy, restartTimesMs: [] }, 3 * HOUR + 30 * 60_000), 12, 'restarts saved up never exceed one hour of budget');
});

test('control - gpucolo outer: holds while training restarts, and measures the restart it caused', () => {
  const p = createGpucolo();
  let s: GpucoloState = { ...p.initialState(), restartSinceMs: 10_000, startMs: 0 };
  const k = p.initialKnobs();
  const w = summarize('svc', 25, Array.from({ length: 30 }, () => 4), 30, 200);
  assert.deepEqual(p.outer(s, input(12_000, [w], k, false)).decisions, []);
  // Training runs again 7 s after the change: that is the restart cost from now on.
  s = p.inner(s, input(17_000, [w], k, true)).state;
  assert.equal(s.restartMs, 7_000);
  assert.equal(s.restartSinceMs, null);
});

// The shipped defaults on the simulated GPU (gpu/model), several plants of the profile family, two seeds each.
const base = scenario('rate-2x');
const load = (profile: string, durationS: number, points: [number, number][]): Scenario => ({
  ...base, name: 'test', profile, durationS, schedule: points.map(([tS, rateRps]) => ({ tS, rateRps, batch: 2 })),
});
const run = (s: Scenario, seed: number) => ({ run: simulate(s, 'gpucolo', seed), alone: simulate(s, 'no-colocation', seed) });
/** Share in force at each second (an integer share; a restart second averages two). */
const shareChanges = (r: RunResult, fromS: number) => {
  let n = 0;
  for (let i = 1; i < r.seconds.length; i++) if (r.seconds[i]!.t >= fromS && Math.round(r.seconds[i]!.mpsSharePct) !== Math.round(r.seconds[i - 1]!.mpsSharePct)) n++;
  return n;
};

test('control - gpucolo at a steady load: one move to its share, at most one more after it, and no oscillation', () => {
  for (const profile of ['rtx3090-resnet50-wrn101', 'rtx3090-resnet50-wrn101-gentle', 'h200-resnet50-wrn101']) {
    for (const seed of [1, 2]) {
      const s = load(profile, 900, [[0, 110]]);
      const { run: r, alone } = run(s, seed);
      const where = `${profile} seed ${seed}`;
      assert.ok(r.mpsRestarts >= 1, `${where}: the initial share is left once it has been measured`);
      assert.ok(r.mpsRestarts <= 2, `${where}: ${r.mpsRestarts} restarts: at most one after converging`);
      assert.ok(r.mpsRestarts / (r.durationS / 3600) <= 12, `${where}: at most 12 restarts an hour`);
      // After the first move has been measured, the duty does not swing: it moves little from second to second,
      // rarely jumps, and is not parked high (a steady duty is training the share should have taken back).
      const late = r.seconds.filter((x) => x.t >= 300);
      let tv = 0, jumps = 0;
      for (let i = 1; i < late.length; i++) {
        const d = Math.abs(late[i]!.sleepDuty - late[i - 1]!.sleepDuty);
        tv += d;
        if (d > 0.5) jumps++;
      }
      assert.ok(tv / late.length < 0.08, `${where}: duty moves ${tv / late.length} per second`);
      assert.ok(jumps <= late.length / 100, `${where}: ${jumps} duty jumps of more than 0.5`);
      const mean = late.reduce((a, x) => a + x.sleepDuty, 0) / late.length;
      assert.ok(mean < 0.35, `${where}: mean duty ${mean}`);
      assert.ok(shareChanges(r, 300) <= 2, `${where}: the share moved ${shareChanges(r, 300)} times after 300 s`);
      const sc = score(r, loadSteps(s), alone);
      assert.ok(sc.attainmentP99 >= attainmentFloor(alone), `${where}: attainment ${sc.attainmentP99}`);
    }
  }
});

test('control - gpucolo settles within 2 s after a load step, on several plants', () => {
  for (const profile of ['rtx3090-resnet50-wrn101', 'rtx3090-resnet50-wrn101-gentle', 'rtx3090-resnet50-wrn101-steep']) {
    for (const seed of [1, 2]) {
      // 100 req/s, +70% at 180 s, back at 300 s.
      const s = load(profile, 400, [[0, 100], [180, 170], [300, 100]]);
      const { run: r, alone } = run(s, seed);
      const sc = score(r, loadSteps(s), alone);
      assert.deepEqual(loadSteps(s), [180, 300]);
      assert.ok(sc.settleSecMax <= 2, `${profile} seed ${seed}: settled after ${sc.settleSec.join(', ')} s`);
    }
  }
});

test('control - gpucolo holds the attainment floor through repeated sharp bursts', () => {
  // 90 req/s with a 3 s burst to 300 req/s (3.3x) every minute.
  const points: [number, number][] = [];
  for (let t = 0; t < 600; t += 60) points.push([t, 90], [t + 40, 300], [t + 43, 90]);
  for (const profile of ['rtx3090-resnet50-wrn101-gentle', 'h200-resnet50-wrn101']) {
    for (const seed of [1, 2]) {
      const s = load(profile, 600, points);
      const { run: r, alone } = run(s, seed);
      const sc = score(r, loadSteps(s), alone);
      const floor = attainmentFloor(alone);
      assert.ok(sc.attainmentP99 >= floor, `${profile} seed ${seed}: attainment ${sc.attainmentP99} < floor ${floor}`);
      assert.ok(sc.trainingItersPerSec > 0, 'and trains');
    }
  }
});

test('control - gpucolo identifies a fast plant behind a closed-loop client (always busy) and raises its share', () => {
  // The measured H200 profile: ResNet-50 inference in 3.6 ms whatever the batch, so the paper's closed-loop client
  // keeps the GPU busy all the time. Its window means are service times, and the interference must be read from
  // them: a reading withheld "near saturation" left the model unready and the share at its first guess forever.
  const s: Scenario = { ...scenario('paper-burst'), profile: 'h200-resnet50-measured' };
  const { run: r, alone } = run(s, 1);
  const last = r.seconds[r.seconds.length - 1]!;
  assert.ok(r.mpsRestarts >= 1 && last.mpsSharePct > 50, `share ${last.mpsSharePct}% after ${r.mpsRestarts} restart(s)`);
  const sc = score(r, loadSteps(s), alone);
  // At the first share (15%) this plant trains about 17 it/s.
  assert.ok(sc.trainingItersPerSec > 25, `training ${sc.trainingItersPerSec.toFixed(1)} it/s`);
  assert.ok(sc.attainmentP99 >= attainmentFloor(alone), `attainment ${sc.attainmentP99}: the SLO holds`);
});

test('control - gpucolo stops training where even the duty cap breaks the floor, and resumes once the load falls', () => {
  // 150 req/s, then 300 (near what inference alone serves on the steep plant) for 15 minutes, then 150 again.
  const s = load('rtx3090-resnet50-wrn101-steep', 2700, [[0, 150], [900, 300], [1800, 150]]);
  const { run: r, alone } = run(s, 2);
  const off = r.seconds.filter((w) => !w.trainingRunning);
  assert.ok(off.length >= 600, `training stopped for most of the heavy phase (${off.length} s)`);
  assert.ok(off.every((w) => w.t >= 900 && w.t <= 1830), `only in it, or just after (${off[0]?.t}-${off.at(-1)?.t} s)`);
  assert.ok(r.seconds.filter((w) => w.t > 1830).every((w) => w.trainingRunning), 'running again once the load fell');
  const sc = score(r, loadSteps(s), alone);
  assert.ok(sc.attainmentP99 >= attainmentFloor(alone), `floor held: ${sc.attainmentP99}`);
  assert.ok(sc.mpsRestartsPerHour <= 12, `restarts ${sc.mpsRestartsPerHour} per hour`);
});

test('control - gpucolo at a load inference alone barely serves, on a run whose budget allows one restart: training stops instead of a share move', () => {
  // The matrix's flat-85 load (Poisson at 85% of what inference alone serves, 300 s): on these plants alone misses
  // about half the seconds there, and 300 s earn one restart. A share move bought nothing (the duty sits at the cap
  // whatever the share) and left the stop no restart: one to three seconds under the floor.
  for (const profile of ['rtx3090-resnet50-wrn101', 'rtx3090-resnet50-wrn101-restart5s']) {
    for (const seed of [1, 2]) {
      const s = matrixLoads('flat-85')[0]!.build(profile, loadProfile(profile), seed);
      const { run: r, alone } = run(s, seed);
      const where = `${profile} seed ${seed}`;
      assert.equal(r.mpsRestarts, 0, `${where}: no share move`);
      const off = r.seconds.filter((w) => !w.trainingRunning);
      assert.ok(off.length >= 180, `${where}: training stopped for most of the run (${off.length} s)`);
      const sc = score(r, loadSteps(s), alone);
      assert.ok(sc.attainmentP99 >= attainmentFloor(alone), `${where}: attainment ${sc.attainmentP99} < floor ${attainmentFloor(alone)}`);
    }
  }
});

test('control - gpucolo on a plant steeper than its prior, before inference alone has been read: the first move is not planned on alone\'s single reading', () => {
  // The matrix's flat-60 load (60% of what inference alone serves, 300 s) on a test plant whose interference grows
  // as share^2.8 (bench/results/out-of-family): at 15% training is all but invisible, so the duty never reached the
  // cap after the start and alone was read on that one second (s0 9% high). Its chance of a miss read from that
  // (18% of the seconds, where inference alone misses about 1%) made training's part of a miss at every larger
  // share look small: the first move went 15 -> 75%, the duty sat at 0.94 for the rest of the run, and the run
  // missed its floor by 0.028.
  const profile = 'bench/results/out-of-family/outside-steep.json';
  for (const seed of [1, 2]) {
    const s = matrixLoads('flat-60')[0]!.build(profile, loadProfile(profile), seed);
    const { run: r } = run(s, seed);
    const top = Math.max(...r.seconds.map((w) => w.mpsSharePct));
    assert.ok(top <= 30, `seed ${seed}: the share went to ${top}%`);
  }
});

test('control - gpucolo resumes at the smallest share on the last restart the budget allows, and holds the floor at the next peak', () => {
  // Two one-minute peaks at 300 req/s (near what inference alone serves) with 150 req/s around them: the first
  // peak stops training, and its resume spends the one restart a 6-minute run earns, so nothing is left to stop
  // training at the second. (On seed 2 the duty at the cap holds the first peak without a stop, and the one restart
  // moves the share to 5% after it: the second peak meets 5% either way.)
  const s = load('rtx3090-resnet50-wrn101', 360, [[0, 150], [60, 300], [120, 150], [240, 300], [300, 150]]);
  let stops = 0;
  for (const seed of [1, 2]) {
    const { run: r, alone } = run(s, seed);
    const where = `seed ${seed}`;
    const stopped = r.seconds.findIndex((w) => !w.trainingRunning);
    const resumed = r.seconds.findIndex((w, i) => i > stopped && w.trainingRunning);
    if (stopped >= 0) {
      stops++;
      assert.ok(resumed > stopped, `${where}: training stopped at a peak and resumed (${stopped}, ${resumed})`);
      assert.ok(r.seconds.slice(resumed + 1).every((w) => Math.round(w.mpsSharePct) === 5), `${where}: resumed at 5% (${r.seconds[resumed + 1]?.mpsSharePct}%)`);
    }
    assert.ok(r.seconds.slice(230).every((w) => w.trainingRunning && Math.round(w.mpsSharePct) === 5), `${where}: the second peak met running at 5%`);
    assert.ok(r.mpsRestarts <= 1, `${where}: ${r.mpsRestarts} restarts`);
    const sc = score(r, loadSteps(s), alone);
    assert.ok(sc.attainmentP99 >= attainmentFloor(alone), `${where}: attainment ${sc.attainmentP99} < floor ${attainmentFloor(alone)}`);
    assert.ok(sc.trainingItersPerSec > 0, `${where}: and trains`);
  }
  assert.ok(stops >= 1, 'the stop and the resume at 5% are exercised on at least one seed');
});

test('control - gpucolo outer: a share\'s recorded interference is read against s0 now before the exponent is fitted', () => {
  // Read at a 15% share against s0 from one second at the cap (7% high), then s0 read again while training restarted.
  const rec = { pct: 15, interference: 0.008, iWeight: 90, s0Ms: 2.733, trainPerAwake: 1.1, tWeight: 50 };
  const now = interferenceAgainst(rec, 2.55);
  // What was measured, the batch time with training awake, is kept: s0 (1 + I).
  assert.ok(Math.abs(2.55 * (1 + now) - 2.733 * 1.008) < 1e-9, `I ${now}`);
  assert.ok(now > 0.07 && now < 0.09, `I ${now}: ten times the first reading`);
  // Against the s0 it was read with, or with no s0 known, the record stands; a lower batch time than s0 is no interference.
  assert.ok(Math.abs(interferenceAgainst(rec, 2.733) - 0.008) < 1e-12);
  assert.equal(interferenceAgainst(rec, null), 0.008);
  assert.equal(interferenceAgainst({ ...rec, s0Ms: 0 }, 2.55), 0.008);
  assert.equal(interferenceAgainst(rec, 3), 0);
});

test('control - gpucolo outer: a share whose interference is within s0\'s reading error stays out of the exponent fit', () => {
  // s0 read six times, a few percent apart, as seconds at the duty cap and while training restarts read it.
  const m = emptyModel();
  for (const r of [2.48, 2.6, 2.53, 2.69, 2.55, 2.66]) readS0(m, r, 0.3);
  const above = readableAbove(m);
  assert.ok(above > 0.04 && above < 0.2, `readable above I ${above}`);
  // What the steep test plant (I ~ share^2.8) recorded: I 0.059 at 15% against s0 2.511, 0.0105 at 5% against 2.65.
  // Against s0 now, 15% reads less than 5%: at full trust the fit reads a falling interference.
  const shares = [
    { pct: 15, interference: 0.0593, iWeight: 100, s0Ms: 2.511, trainPerAwake: 1, tWeight: 100 },
    { pct: 5, interference: 0.0105, iWeight: 100, s0Ms: 2.65, trainPerAwake: 0.5, tWeight: 100 },
  ];
  const value = (r: (typeof shares)[number]) => interferenceAgainst(r, 2.65);
  const trusted = fitExponent(shares, value, (r) => r.iWeight);
  assert.ok(trusted !== null && trusted < 0, `fitted at full trust: ${trusted}`);
  assert.equal(fitExponent(shares, value, (r) => r.iWeight, above), null, 'neither reading stands clear: the prior range stays');
  // Readings that stand clear of the error are fitted as before: 0.1 at 15%, 0.5 at 40%.
  const clear = [{ ...shares[0]!, interference: 0.1, s0Ms: 2.65 }, { ...shares[1]!, pct: 40, interference: 0.5 }];
  const slope = fitExponent(clear, value, (r) => r.iWeight, above);
  assert.ok(slope !== null && Math.abs(slope - Math.log(5) / Math.log(40 / 15)) < 1e-9, `slope ${slope}`);
  // An s0 read the same every time, or read once, leaves every reading in.
  const steady = emptyModel();
  readS0(steady, 2.5, 0.3);
  assert.equal(readableAbove(steady), 0);
  readS0(steady, 2.5, 0.1);
  assert.equal(readableAbove(steady), 0);
});

test('control - gpucolo holds the floor on a load that rises steadily for twenty minutes (60 -> 240 req/s)', () => {
  // A share taken at the ramp's foot meets four times its load by the end; the restart budget moves it down only
  // every five minutes or so, and the duty covers the rest. The model's log-normal tail foresaw about a tenth of
  // the misses training added at the duties in force (seed 1 missed 13 seconds, its floor allows 11): the misses
  // seen over those foreseen make each foreseen one dearer (gpucolo-service.ts oursExcess).
  const points: [number, number][] = Array.from({ length: 121 }, (_, i) => [i * 10, 60 + (180 * i) / 120]);
  const s = load('rtx3090-resnet50-wrn101', 1200, points);
  for (const seed of [1, 2]) {
    const { run: r, alone } = run(s, seed);
    const sc = score(r, loadSteps(s), alone);
    assert.ok(sc.attainmentP99 >= attainmentFloor(alone), `seed ${seed}: attainment ${sc.attainmentP99} < floor ${attainmentFloor(alone)}`);
    assert.ok(sc.trainingItersPerSec > 0.5, `seed ${seed}: and trains (${sc.trainingItersPerSec} it/s)`);
  }
});
