import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGpucolo, createPolicy, GPUCOLO_DEFAULTS, MAX_DUTY, summarize } from '../../control/index.ts';
import type { ControlInput, Decision, GpucoloState, Knobs, LatencyWindow } from '../../control/index.ts';
import {
  dutyGrid, interferenceFromStretch, looksClosed, meanSlowdown, missChance, missOf, missRow, normalQuantile, pickDuty, binRate, rateBin, serviceFromMean,
  surpriseOf, tailMs,
} from '../../control/gpucolo-model.ts';
import { attainment, attainmentFloor, capacityRps, matrixLoads, simulate, type Scenario } from '../../bench/control/index.ts';
import { loadProfile } from '../../gpu/model/index.ts';
import {
  aloneChance, aloneExcess, aloneExcessAt, countAloneSecond, countOursSecond, decayedRates, emptyModel, forecastMix, nextWeights, oursExcess, rechargeMisses, recordCharge, secondTail, serverLoad, trainingShare,
} from '../../control/gpucolo-service.ts';

const duty = (k: Knobs) => (k.pacing.mode === 'duty' ? k.pacing.duty : NaN);
const input = (nowMs: number, services: LatencyWindow[], knobs: Knobs, running = true): ControlInput => ({
  nowMs,
  services,
  trainings: [{ jobId: 't', itersPerSec: running ? 1 : 0, running }],
  knobs,
});
/** A 200 ms window of `n` requests at latencies around `ms` (deterministic spread), `arrivals` arrivals. */
const win = (ms: number, n = 30, arrivals = n, sloMs = 25): LatencyWindow =>
  summarize('svc', sloMs, Array.from({ length: n }, (_, i) => ms * (0.8 + (0.4 * i) / Math.max(1, n - 1))), arrivals, 200);

test('control - gpucolo defaults: 200 ms inner, 5 s outer, duty pacing under the shared cap, a safe start', () => {
  const p = createGpucolo();
  assert.equal(p.name, 'gpucolo');
  assert.equal(p.innerPeriodMs, 200);
  assert.equal(p.outerPeriodMs, 5_000);
  assert.equal(p.options.metric, 'p99');
  assert.equal(p.options.estimatorWindows * p.innerPeriodMs, 1_000, 'the estimate spans the 1 s scoring window');
  assert.equal(p.options.maxDuty, MAX_DUTY);
  assert.equal(p.options.restartsPerHour, 12);
  const k = p.initialKnobs();
  assert.equal(k.mpsSharePct, GPUCOLO_DEFAULTS.initialSharePct);
  assert.equal(duty(k), GPUCOLO_DEFAULTS.initialDuty);
  assert.equal(k.pacing.mode === 'duty' && k.pacing.periodMs, 50);
  assert.equal(k.trainingRunning, true);
  // No option names a plant constant: the exponents are priors only, and a range for beta.
  for (const key of Object.keys(GPUCOLO_DEFAULTS)) assert.doesNotMatch(key, /^(gamma|beta)$/);
  const q = createPolicy('gpucolo', { innerPeriodMs: 100, outerPeriodMs: 2_000 });
  assert.equal(q.innerPeriodMs, 100);
  assert.equal(q.outerPeriodMs, 2_000);
  assert.throws(() => createGpucolo({ maxDuty: 0.99 }), RangeError, 'no duty above the cap every pacing path enforces');
  assert.throws(() => createGpucolo({ initialSharePct: 3 }), RangeError);
  assert.throws(() => createGpucolo({ floorSharePct: 0 }), RangeError);
});

test('control - gpucolo model: the tail grows with interference and load, falls with sleep, and saturates at capacity', () => {
  const at = (interference: number, d: number, rateRps: number, closed = false) =>
    tailMs({ s0Ms: 2.5, interference, duty: d, periodMs: 50, rateRps, closed });
  for (const rate of [50, 150, 250]) {
    for (const d of [0, 0.5, 0.9]) assert.ok(at(0.5, d, rate) > at(0.2, d, rate), 'more interference, longer tail');
    for (const i of [0.3, 1, 3]) assert.ok(at(i, 0, rate) >= at(i, 0.5, rate) && at(i, 0.5, rate) >= at(i, 0.95, rate), 'more sleep, shorter tail');
  }
  assert.ok(at(0.3, 0, 250) > at(0.3, 0, 100), 'more load, longer tail');
  // Convex near capacity: the same 50 req/s costs more at the top than at the bottom.
  assert.ok(at(0, 0, 350) - at(0, 0, 300) > at(0, 0, 100) - at(0, 0, 50));
  assert.equal(at(0, 0, 400), Infinity, '400 req/s of 2.5 ms is past capacity');
  assert.equal(at(0.3, 0, 400, true), 2.5 * 1.3, 'a closed loop does not queue');
  // With a large interference the tail is set by the awake phase, not by the whole slowdown.
  assert.ok(at(10, 0.8, 20) < 2.5 * 10, `${at(10, 0.8, 20)}`);
});

test('control - gpucolo model: what it reads from the windows inverts what it predicts', () => {
  // The M/D/1 mean W = S + rate S^2 / (2 (1 - rate S)) is solved back for S.
  for (const [s, rate] of [[2.5, 50], [2.5, 300], [10, 80]] as const) {
    const u = (rate * s) / 1000;
    const w = s + (rate / 1000) * s * s / (2 * (1 - u));
    assert.ok(Math.abs(serviceFromMean(w, rate, false) - s) < 1e-9, `${s} ms at ${rate} req/s`);
  }
  assert.equal(serviceFromMean(55, 18, true), 55, 'a closed loop: the mean is the batch time');
  // The interference behind a stretch, for short and long batches and any duty.
  for (const [i, d, s0] of [[0.3, 0, 2.5], [1, 0.5, 2.5], [4, 0.3, 2.5], [0.3, 0.4, 60]] as const) {
    const back = interferenceFromStretch(meanSlowdown(i, d, s0, 50), d, s0, 50);
    assert.ok(Math.abs(back - i) < 1e-6, `I ${i} duty ${d} s0 ${s0}: ${back}`);
  }
  assert.equal(interferenceFromStretch(0.98, 0, 2.5, 50), 0, 'faster than alone reads as no interference');
  // A client that waits for its replies: one request in flight and a tail as tight as the batches'.
  assert.equal(looksClosed(18, 55, 54, 58), true);
  assert.equal(looksClosed(150, 7, 4, 20), false, 'an open queue at one request in flight has a wide tail');
  assert.ok(Math.abs(normalQuantile(0.995) - 2.5758) < 1e-3);
  assert.ok(Math.abs(missChance(25 / Math.exp(2.5758 * 0.2), 25, 0.2) - 0.005) < 1e-4);
});

test('control - gpucolo model: sleep is bought where it moves the tail, not where it cannot', () => {
  const grid = dutyGrid(MAX_DUTY);
  assert.equal(grid[0], 0);
  assert.equal(grid.at(-1), MAX_DUTY);
  const point = (interference: number, rateRps: number) => ({ s0Ms: 2.5, interference, periodMs: 50, rateRps, closed: false });
  // A large interference at a busy load: each step of sleep cuts the chance of a miss steeply.
  const steep = missRow(point(1.5, 200), 0.8, 25, 0.2, grid);
  const kSteep = pickDuty(grid, steep, steep, 0, 25);
  assert.ok(grid[kSteep]! > 0.3, `duty ${grid[kSteep]}`);
  assert.ok(steep[kSteep]! < steep[0]! / 4);
  // A tiny interference: sleep cannot make a miss much less likely than inference alone makes it.
  const flat = missRow(point(0.005, 200), 0.8, 25, 0.2, grid);
  assert.equal(grid[pickDuty(grid, flat, flat, 0, 25)], 0);
  // A higher price buys more sleep.
  assert.ok(pickDuty(grid, steep, steep, 0, 200) >= kSteep);
  // Independent bursts keep a duty the forecast needs even when the load now is light.
  const light = missRow(point(0.8, 30), 0.8, 25, 0.2, grid);
  assert.equal(grid[pickDuty(grid, light, light, 0, 25)], 0);
  assert.ok(grid[pickDuty(grid, light, steep, 0.9, 25)]! > 0);
  // The forecast adds caution for the next second; it never discounts the load that is here: a step up right after a
  // calm spell (whose seconds read as unpredictable) is met at the load seen now.
  const busy = missRow(point(0.8, 200), 0.8, 25, 0.2, grid);
  assert.equal(missOf(0.3, 0.1, 0.9), 0.3);
  assert.equal(missOf(0.1, 0.3, 0.5), 0.2);
  assert.equal(pickDuty(grid, busy, light, 0.95, 25), pickDuty(grid, busy, busy, 0, 25), 'a light forecast does not lower the duty a busy second needs');
  assert.equal(surpriseOf(0.5, 0.5), 0, 'a load the last second predicts');
  assert.equal(surpriseOf(0.5, 0), 1, 'independent seconds');
  assert.equal(surpriseOf(null, null), 0);
  assert.equal(surpriseOf(0.011, 0, 100), 0, 'at 100 req/s, a spread of 1/100 is counting, not load');
});

test('control - gpucolo inner: the next second is weighed from the load now, not from a peak the forecast holds hours away', () => {
  const grid = dutyGrid(MAX_DUTY);
  const plant = { s0Ms: 2.5, interference: 0.3, periodMs: 50, closed: false };
  // A forecast that has seen 100 req/s most of the time and a peak of 300 req/s (alone 75% busy) for a while.
  const model = (variance: number | null, covariance: number) => ({
    ...emptyModel(), lnRateMean: Math.log(120), lnRateVar: variance, lnRateCov: covariance,
    rates: { bins: [rateBin(100), rateBin(300)], weights: [300, 60] },
  });
  const row = (rateRps: number) => missRow({ ...plant, rateRps }, 1, 25, 0.2, grid);
  const near = (a: readonly number[], b: readonly number[]) => a.every((x, k) => Math.abs(x - b[k]!) < 1e-9);
  // The forecast as it is: each bin's chance by its weight.
  const asIs = grid.map((_, k) => (300 * row(binRate(rateBin(100)))[k]! + 60 * row(binRate(rateBin(300)))[k]!) / 360);
  // A load that moves slowly (its lag-one correlation reads 1 once the counting is taken out): the next second is
  // where the load is now.
  const slow = model(0.3, 0.297);
  const atLow = forecastMix(slow, plant, 1, 25, 0.2, grid, 100);
  assert.ok(atLow[0]! < 0.01 * asIs[0]!, `at 100 req/s: ${atLow[0]} against ${asIs[0]} for the forecast as it is`);
  assert.ok(forecastMix(slow, plant, 1, 25, 0.2, grid, 300)[0]! > 0.9, 'at the peak, the peak');
  // When one second says nothing of the next (independent bursts), and before the rate statistics are read: the
  // forecast as it is, the peak weighing as often as it comes.
  for (const m of [model(0.3, 0), model(null, 0)]) assert.ok(near(forecastMix(m, plant, 1, 25, 0.2, grid, 100), asIs));
  // So a slow load at 100 req/s runs awake; independent bursts buy sleep that covers the peak.
  const here = row(108);
  assert.equal(grid[pickDuty(grid, here, atLow, 0.02, 50)], 0);
  assert.ok(grid[pickDuty(grid, here, forecastMix(model(0.3, 0), plant, 1, 25, 0.2, grid, 100), 1, 50)]! >= 0.5);
  // The weights themselves: nothing to weigh for a forecast of one load.
  const out = new Float64Array(4);
  assert.equal(nextWeights({ ...slow, rates: { bins: [rateBin(100)], weights: [1] } }, 100, out), false);
  assert.equal(nextWeights(slow, 100, out), true);
  assert.ok(out[0]! > 1000 * out[1]!, `weights ${out[0]} / ${out[1]}`);
});

test('control - gpucolo inner: a closed-loop client is read while training is out of the way, not from awake training\'s spread', () => {
  const p = createGpucolo();
  let s: GpucoloState = p.initialState();
  let k = p.initialKnobs();
  // A client that sends its next request when the last returns: rate x mean latency = 1, latencies the batches' own.
  const closedWin = (ms: number, spread: number) => {
    const n = Math.round(200 / ms);
    return summarize('svc', 90, Array.from({ length: n }, (_, i) => ms * (1 - spread / 2 + (spread * i) / Math.max(1, n - 1))), n, 200);
  };
  // Training held at the cap (the knobs in force are what the tier reads).
  k = { ...k, pacing: { mode: 'duty', duty: MAX_DUTY, periodMs: 50 } };
  for (let t = 200; t <= 2_000; t += 200) s = p.inner(s, input(t, [closedWin(10, 0.1)], k)).state;
  assert.ok(s.models.svc!.closed! > 0.5, `closed-loop evidence ${s.models.svc!.closed}`);
  // Training awake stretches some batches far more than others (p99/p50 well past 1.6): not evidence of a queue.
  const closedBefore = s.models.svc!.closed!;
  k = { ...k, pacing: { mode: 'duty', duty: 0.2, periodMs: 50 } };
  assert.equal(looksClosed(closedWin(12, 1.6).rateRps, closedWin(12, 1.6).meanMs, closedWin(12, 1.6).p50Ms, closedWin(12, 1.6).p99Ms), false, 'such a window alone reads as a queue');
  for (let t = 2_200; t <= 8_000; t += 200) s = p.inner(s, input(t, [closedWin(12, 1.6)], k)).state;
  assert.equal(s.models.svc!.closed, closedBefore, 'awake windows leave the closed-loop reading alone');
});

test('control - gpucolo reads a second the way the SLO is scored on it', () => {
  const second = summarize('svc', 25, [...Array.from({ length: 79 }, () => 5), 40], 80, 1000);
  assert.equal(secondTail(second, 'p99'), 40, 'with 100 requests or fewer, the p99 is the slowest one');
  const busy = summarize('svc', 25, [...Array.from({ length: 299 }, () => 5), 40], 300, 1000);
  assert.equal(secondTail(busy, 'p99'), 5);
  // A queue draining after a burst: few arrivals, many completions: the server is busy.
  const draining = summarize('svc', 25, Array.from({ length: 70 }, () => 100), 10, 200);
  assert.equal(serverLoad(draining), 350);
});

test('control - gpucolo inner: measures inference alone first, then relaxes; holds on empty windows and restarts', () => {
  const p = createGpucolo();
  let s: GpucoloState = p.initialState();
  let k = p.initialKnobs();
  const first = p.inner(s, input(200, [win(4)], k));
  assert.equal(duty(first.knobs), MAX_DUTY, 'training all but asleep until inference alone has been read');
  assert.deepEqual(first.decisions.map((d) => d.reason), ['measuring inference alone']);
  ({ state: s, knobs: k } = first);
  for (let t = 400; t <= 3_000; t += 200) ({ state: s, knobs: k } = p.inner(s, input(t, [win(4)], k)));
  assert.ok(s.models.svc!.s0Ms! > 2 && s.models.svc!.s0Ms! < 5, `s0 ${s.models.svc!.s0Ms}`);
  assert.ok(duty(k) < MAX_DUTY, 'relaxing once alone has been read');
  // Once the estimator's second holds nothing but empty windows, no knob moves.
  const empty = summarize('svc', 25, [], 0, 200);
  for (let t = 3_200; t <= 4_000; t += 200) ({ state: s, knobs: k } = p.inner(s, input(t, [empty], k)));
  const before = k;
  for (let t = 4_200; t <= 8_000; t += 200) {
    const r = p.inner(s, input(t, [empty], k));
    assert.deepEqual(r.decisions, []);
    ({ state: s, knobs: k } = r);
  }
  assert.deepEqual(k, before);
  // Training restarting: latency says nothing about the duty, and those windows are inference alone.
  const restarting = p.inner(s, input(8_200, [win(3)], k, false));
  assert.deepEqual(restarting.decisions, []);
  assert.equal(duty(restarting.knobs), duty(k));
  // The state stays plain data an actor can persist.
  assert.deepEqual(JSON.parse(JSON.stringify(restarting.state)), restarting.state);
});

test('control - gpucolo inner: a job asked to stop that still runs (held at the duty cap) is not read as inference alone', () => {
  const p = createGpucolo();
  let s: GpucoloState = p.initialState();
  let k = p.initialKnobs();
  for (let t = 200; t <= 3_000; t += 200) ({ state: s, knobs: k } = p.inner(s, input(t, [win(4)], k)));
  const s0 = s.models.svc!.s0Ms!;
  const stopped: Knobs = { ...k, trainingRunning: false };
  // Windows twice as slow: with the job gone they are inference alone and s0 follows them; with the job still
  // running (it cannot checkpoint, so it was held at the cap instead of stopped) s0 keeps what it was.
  const after = (jobRuns: boolean) => {
    let st = s;
    for (let t = 3_200; t <= 6_000; t += 200) st = p.inner(st, input(t, [win(8)], stopped, jobRuns)).state;
    return st.models.svc!.s0Ms!;
  };
  assert.ok(after(false) > s0 * 1.3, `alone read: s0 ${s0} -> ${after(false)}`);
  assert.equal(after(true), s0);
});

test('control - gpucolo inner: a 200 ms window past the SLO, or a second with nothing finished, sends the duty to the cap at once', () => {
  const p = createGpucolo({ initialDuty: 0 });
  let s: GpucoloState = p.initialState();
  let k = p.initialKnobs();
  for (let t = 200; t <= 8_000; t += 200) ({ state: s, knobs: k } = p.inner(s, input(t, [win(5)], k)));
  // 2 of 30 requests past the SLO: more than 5% of a fifth of the second, so the second's p99 is lost.
  const hot = summarize('svc', 25, [...Array.from({ length: 28 }, () => 5), 40, 40], 30, 200);
  const r = p.inner(s, input(8_200, [hot], k));
  assert.equal(duty(r.knobs), MAX_DUTY);
  const d = r.decisions[0]!;
  assert.equal(d.tier, 'inner');
  assert.equal(d.knob, 'pacing');
  assert.equal(d.reason, 'window p95 above SLO: duty to cap');
  assert.equal(d.drivingServiceId, 'svc');
  for (const key of ['measuredMs', 'sloMs', 'rateRps', 'price', 'noise', 'windowMs', 'newDuty']) assert.equal(typeof d.terms[key], 'number', key);
  // Requests arrived through a whole second, none finished.
  let s2 = s, k2 = k;
  for (let t = 8_200; t <= 9_200; t += 200) ({ state: s2, knobs: k2 } = p.inner(s2, input(t, [summarize('svc', 25, [], 30, 200)], k2)));
  assert.equal(duty(k2), MAX_DUTY);
  // Coming down is gradual: at most maxStepDown per period.
  const down = p.inner(r.state, input(8_400, [win(5)], r.knobs));
  assert.ok(duty(r.knobs) - duty(down.knobs) <= p.options.maxStepDown + 1e-9);
});

test('control - gpucolo inner: a window past the SLO that inference has as often with training out of the way does not send the duty to the cap', () => {
  const p = createGpucolo({ initialDuty: 0 });
  let s: GpucoloState = p.initialState();
  let k = p.initialKnobs();
  for (let t = 200; t <= 8_000; t += 200) ({ state: s, knobs: k } = p.inner(s, input(t, [win(5)], k)));
  assert.ok(s.models.svc!.s0Ms !== null, 'inference alone has been read');
  const hot = summarize('svc', 25, [...Array.from({ length: 28 }, () => 5), 40, 40], 30, 200);
  const counted = (capOver: number, awakeOver: number): GpucoloState =>
    ({ ...s, models: { svc: { ...s.models.svc!, capWindows: 200, capOver, awakeWindows: 200, awakeOver } } });
  const reasons = (st: GpucoloState) => p.inner(st, input(8_200, [hot], k)).decisions.map((d) => d.reason);
  // Inference's own spikes: 10% of the fast windows past the SLO at the cap, 11% awake (training's part 9%).
  assert.ok(!reasons(counted(20, 22)).includes('window p95 above SLO: duty to cap'));
  // Training's: 10% at the cap, 40% awake (its part 75%): the cap, at once.
  assert.ok(reasons(counted(20, 80)).includes('window p95 above SLO: duty to cap'));
  // Inference alone never misses: every miss is training's, whatever the awake rate.
  assert.ok(reasons(counted(0, 1)).includes('window p95 above SLO: duty to cap'));
  // Too few windows at the cap to say.
  assert.ok(reasons({ ...s, models: { svc: { ...s.models.svc!, capWindows: 10, capOver: 5, awakeWindows: 200, awakeOver: 22 } } })
    .includes('window p95 above SLO: duty to cap'));
});

test('control - gpucolo: inference alone\'s chance of a miss is scaled up by how much more often it was seen to miss than its model said', () => {
  const sm = emptyModel();
  // A model that puts alone's chance at a 1 s tail of 15 ms against a 25 ms SLO at about 3 in 10,000.
  sm.aloneBias = 0; sm.aloneVar = 0.15 ** 2; sm.aloneN = 100;
  const p0 = aloneChance(sm, 15, 25);
  assert.ok(p0 > 1e-5 && p0 < 1e-3, `${p0}`);
  // Two misses in 100 seconds with training out of the way: not yet evidence.
  for (let i = 0; i < 100; i++) countAloneSecond(sm, i % 50 === 0, 15, 25, 1, 3);
  assert.equal(aloneExcess(sm), 1);
  assert.equal(aloneChance(sm, 15, 25), p0);
  // Five in 200: alone misses about 2.5% of its seconds, and its chance says so.
  for (let i = 0; i < 100; i++) countAloneSecond(sm, i % 33 === 0, 15, 25, 1, 3);
  const p1 = aloneChance(sm, 15, 25);
  assert.ok(p1 > 0.01 && p1 < 0.05, `${p1}`);
  // Scaled, not replaced: a lower load (a lower level) still gives a lower chance.
  assert.ok(aloneChance(sm, 12, 25) < p1);
  // Never below the model, never above 1.
  assert.ok(aloneChance(sm, 30, 25) <= 1 && aloneChance(sm, 30, 25) >= missChance(30, 25, 0.15) - 1e-12);
});

test('control - gpucolo: training\'s misses seen more often than the calibrated model gives them make a foreseen miss dearer', () => {
  const sm = emptyModel();
  // 300 seconds next to training at a model chance (training's part) of 1 in 1,000 each: 0.3 expected in all.
  // Two misses are not yet evidence.
  for (let i = 0; i < 300; i++) countOursSecond(sm, i % 150 === 0 ? 1 : 0, 0.001);
  assert.equal(oursExcess(sm), 1);
  // Six in 600 seconds: about 1%, some ten times what the model gave them.
  for (let i = 0; i < 300; i++) countOursSecond(sm, i % 75 === 0 ? 0.9 : 0, 0.001);
  const e = oursExcess(sm);
  assert.ok(e > 7 && e < 15, `${e}`);
  // Misses at or under the model's chance leave it at 1 (never below).
  const calm = emptyModel();
  for (let i = 0; i < 1000; i++) countOursSecond(calm, i % 100 === 0 ? 1 : 0, 0.02);
  assert.equal(oursExcess(calm), 1);
  // The counts decay (a ten-minute memory): after an hour of clean seconds at the same chance the excess is gone.
  for (let i = 0; i < 3600; i++) countOursSecond(sm, 0, 0.001);
  assert.equal(oursExcess(sm), 1);
});

test('control - gpucolo: until inference alone has been read, its chance of a miss is no higher than the co-located calibration puts it', () => {
  const sm = emptyModel();
  // One reading of alone (the start's second at the cap) put its level 3% over the model; the seconds next to
  // training calibrated the model 28% under it (kappa 0.72), with a co-located spread of 0.19.
  sm.aloneBias = 0.03; sm.aloneN = 1; sm.lnKappa = Math.log(0.72); sm.noiseVar = 0.19 ** 2; sm.kappaN = 30;
  const early = aloneChance(sm, 20, 25);
  assert.ok(Math.abs(early - missChance(20 * 0.72, 25, 0.19)) < 1e-12, `${early}`);
  assert.ok(early < 0.01 && missChance(20 * Math.exp(0.03), 25, 0.19) > 0.1, 'the level read once would have said more than 10%');
  // Read enough: alone's own bias and spread, whatever kappa says.
  sm.aloneN = 10; sm.aloneVar = 0.1 ** 2;
  assert.ok(Math.abs(aloneChance(sm, 20, 25) - missChance(20 * Math.exp(0.03), 25, 0.1)) < 1e-12);
  // A kappa over 1 does not raise an unread alone past its own reading.
  sm.aloneN = 1; sm.aloneVar = null; sm.lnKappa = Math.log(1.3);
  assert.ok(Math.abs(aloneChance(sm, 20, 25) - missChance(20 * Math.exp(0.03), 25, 0.19)) < 1e-12);
});

test('control - gpucolo: misses charged to training before inference alone was seen to miss at that load are charged again, and only at that load', () => {
  const sm = emptyModel();
  sm.aloneBias = 0; sm.aloneVar = 0.15 ** 2; sm.aloneN = 100;
  // Ten misses at load bin 3 charged while alone's model put its own chance at about 3 in 10,000: all training's.
  const oursChance = 0.05;
  for (let i = 0; i < 10; i++) recordCharge(sm, { aloneMs: 15, sloMs: 25, oursChance, share: trainingShare(aloneChance(sm, 15, 25), oursChance), bin: 3 });
  // And two at bin 5, where alone will not be seen to miss.
  for (let i = 0; i < 2; i++) recordCharge(sm, { aloneMs: 15, sloMs: 25, oursChance, share: trainingShare(aloneChance(sm, 15, 25), oursChance), bin: 5 });
  const before = sm.charged.reduce((a, c) => a + c.share, 0);
  assert.ok(before > 11.9, `${before}`);
  // Nothing known of alone's own misses yet: nothing changes.
  assert.equal(rechargeMisses(sm), 0);
  // Alone then misses 5% of its seconds at bin 3 (a noisy service), none at bin 5.
  for (let i = 0; i < 200; i++) countAloneSecond(sm, i % 20 === 0, 15, 25, 1, 3);
  for (let i = 0; i < 200; i++) countAloneSecond(sm, false, 15, 25, 1, 5);
  assert.ok(aloneExcessAt(sm, 3) > 10);
  assert.equal(aloneExcessAt(sm, 5), 1);
  const delta = rechargeMisses(sm);
  // Bin 3's misses are now mostly alone's: training's charge falls by most of their count; bin 5's keep theirs.
  assert.ok(delta < -5 && delta > -10, `${delta}`);
  assert.ok(sm.charged.filter((c) => c.bin === 5).every((c) => c.share > 0.99));
  // Charged again with what is known now: a second pass changes nothing.
  assert.equal(rechargeMisses(sm), 0);
});

test('control - gpucolo: the records of charged misses are bounded', () => {
  const sm = emptyModel();
  for (let i = 0; i < 500; i++) recordCharge(sm, { aloneMs: 15, sloMs: 25, oursChance: 0.05, share: 1, bin: 3 });
  assert.ok(sm.charged.length <= 64, `${sm.charged.length}`);
});

test('control - gpucolo: misses charged before inference alone was read are charged again once it is, in either direction', () => {
  const oursChance = 0.05;
  const charged = (bias: number) => {
    const sm = emptyModel();
    // Charged while alone had not been read (the prior's spread, no bias).
    for (let i = 0; i < 5; i++) recordCharge(sm, { aloneMs: 15, sloMs: 25, oursChance, share: trainingShare(aloneChance(sm, 15, 25), oursChance), bin: 3 });
    assert.equal(rechargeMisses(sm), 0, 'nothing changes before alone is read');
    // Alone read: its tail is exp(bias) times the model's, its spread 0.3.
    sm.aloneBias = bias; sm.aloneVar = 0.3 ** 2; sm.aloneN = 100;
    return rechargeMisses(sm);
  };
  // Alone's tail about twice its model: it misses often on its own, and training was overcharged.
  assert.ok(charged(Math.log(2)) < -1, 'a noisy alone gives back what its misses put on the price');
  // Alone's tail a third of its model: the prior had read alone too noisy; the misses were training's, and the
  // price takes what the first charge left off.
  assert.ok(charged(Math.log(1 / 3)) > 1, 'a quiet alone charges training in full');
});

test('control - gpucolo load forecast: bins decay, fall out at 1e-3 s, and the period lands on its bin in ascending order', () => {
  const h = { bins: [3, 7, 9], weights: [1, 0.0015, 2] };
  // A new bin between two others; 7 decays below 1e-3 and goes.
  assert.deepEqual(decayedRates(h, 0.5, 5, 0.2), { bins: [3, 5, 9], weights: [0.5, 0.2, 1] });
  // An existing bin gains the period on its decayed weight; one decayed away starts again from the period.
  assert.deepEqual(decayedRates(h, 0.5, 9, 0.2), { bins: [3, 9], weights: [0.5, 1.2] });
  assert.deepEqual(decayedRates(h, 0.5, 7, 0.2), { bins: [3, 7, 9], weights: [0.5, 0.2, 1] });
  // Past the last bin, and no load at all.
  assert.deepEqual(decayedRates(h, 1, 12, 0.2), { bins: [3, 7, 9, 12], weights: [1, 0.0015, 2, 0.2] });
  assert.deepEqual(decayedRates(h, 1, null, 0.2), h);
  assert.deepEqual(h, { bins: [3, 7, 9], weights: [1, 0.0015, 2] }, 'the input is not changed');
});

/**
 * gpucolo on the simulated GPU through bench/control/simulate.ts (inner every 200 ms, outer every 5 s on the merged
 * windows, a restart at every share change), a Poisson load at batch 2 following `points` ([s, req/s]): what it
 * decided and when, and the inner periods it marked as saturated.
 */
function driveOnGpu(profileName: string, points: [number, number][], durationS: number, seed: number) {
  const s: Scenario = {
    name: 'saturation-swing', description: 'test load', profile: profileName, sloMs: 25, arrival: 'poisson', durationS,
    schedule: points.map(([tS, rateRps]) => ({ tS, rateRps, batch: 2 })), loadMeanRps: points[0]![1], source: 'test',
  };
  const inner: { tMs: number; d: Decision }[] = [];
  const outer: { tMs: number; d: Decision }[] = [];
  const saturated: number[] = [];
  simulate(s, 'gpucolo', seed, {}, 'gpucolo', (tier, tMs, step) => {
    for (const d of step.decisions) (tier === 'inner' ? inner : outer).push({ tMs, d });
    if (tier === 'inner' && (step.state as GpucoloState).saturatedMs === tMs) saturated.push(tMs);
  });
  return { inner, outer, saturated, outerPeriodMs: GPUCOLO_DEFAULTS.outerPeriodMs };
}

test('control - gpucolo: at a load inference alone barely serves, the duty stays at the cap and the share moves for no gain', () => {
  // A load that swings between 48% and 92% of what inference alone serves every 20 minutes, for an hour.
  const profile = 'rtx3090-resnet50-wrn101-gentle';
  const cap = capacityRps(loadProfile(profile));
  const points: [number, number][] = [];
  for (let t = 0; t < 3600; t += 20) points.push([t, cap * (0.7 + 0.22 * Math.sin((2 * Math.PI * t) / 1200))]);
  const r = driveOnGpu(profile, points, 3900, 1);
  const saturatedBefore = (tMs: number) => r.saturated.some((t) => t > tMs - r.outerPeriodMs && t <= tMs);
  assert.ok(r.saturated.length > 0, 'the peaks reach loads inference alone barely serves');
  // Where the model reads inference alone as missing a second more often than not, at 85% or more of its
  // capacity, every duty the inner tier commands is the cap: the queue awake time adds is not free.
  const atSaturation = r.inner.filter(({ d }) => (d.terms.aloneMissChance ?? 0) >= 0.5 && (d.terms.aloneUtilisation ?? 0) >= 0.85);
  for (const { tMs, d } of atSaturation) assert.equal(d.terms.newDuty, MAX_DUTY, `at ${tMs} ms: duty ${d.terms.newDuty} (${d.reason})`);
  // No share moves for gain on such a period (the duty held at the cap, read as the share's own awake time, had
  // the share chase it: 10% -> 25% in a peak); a safety move to a smaller share may. Stopping training at the cap
  // is the path there.
  for (const { tMs, d } of r.outer.filter((x) => x.d.knob === 'mpsSharePct' && saturatedBefore(x.tMs))) {
    assert.ok(d.newValue < d.oldValue && /expected to miss the SLO more than allowed/.test(d.reason), `share ${d.oldValue} -> ${d.newValue} at ${tMs} ms (${d.reason})`);
  }
  assert.ok(r.outer.some(({ tMs, d }) => d.knob === 'trainingRunning' && d.newValue === 0 && saturatedBefore(tMs)), 'training stopped in a peak');
});

test('control - gpucolo: misses at a load inference alone barely serves do not raise the price, so a quiet load after it gets the GPU back', () => {
  // genai-qps-cycle (a public load curve) on the calibrated plant: its first ten minutes swing up to and past what
  // inference alone serves (alone misses 58% of those seconds); its last ten average 6% of it. Priced as training's,
  // the misses of the first half held the duty at the cap through the second (0.95, seed 1).
  const profile = 'rtx3090-resnet50-wrn101';
  const s = matrixLoads('genai-qps-cycle')[0]!.build(profile, loadProfile(profile), 1);
  const run = simulate(s, 'gpucolo', 1, {}, 'gpucolo');
  const alone = simulate(s, 'no-colocation', 1);
  const quiet = run.seconds.slice(600);
  const meanRate = quiet.reduce((a, w) => a + w.rateRps, 0) / quiet.length;
  assert.ok(meanRate < 0.15 * capacityRps(loadProfile(profile)), `the last ten minutes are quiet (${meanRate.toFixed(0)} rps)`);
  const meanDuty = quiet.reduce((a, w) => a + w.sleepDuty, 0) / quiet.length;
  assert.ok(meanDuty < 0.3, `training sleeps ${meanDuty.toFixed(2)} of the quiet half`);
  assert.ok(attainment(run) >= attainmentFloor(alone), `attainment ${attainment(run).toFixed(4)} against the floor ${attainmentFloor(alone).toFixed(4)}`);
});
