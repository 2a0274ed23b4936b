import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FIG4_CASES,
  GpuModel,
  GpuModelError,
  ManualClock,
  SimGpuDevice,
  createSimGpuDevice,
  loadProfile,
  measureFig4Case,
  serviceMs,
  type GpuModelOptions,
  type GpuProfile,
} from '../../gpu/model/index.ts';
import { MAX_DUTY } from '../../control/index.ts';

const PROFILE = 'rtx3090-resnet50-wrn101';

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** A profile with no jitter and a fixed 10 ms batch, so exact times can be asserted. */
function exactProfile(): GpuProfile {
  const p = loadProfile(PROFILE);
  p.inference.fixedMs = 10;
  p.inference.perItemMs = 0;
  p.inference.jitterSigma = 0;
  return p;
}

function lightLoadModel(extra: Partial<GpuModelOptions> = {}): GpuModel {
  return new GpuModel({
    profile: loadProfile(PROFILE),
    seed: 3,
    services: [{ id: 'inf', batch: 6, rateRps: 50 }],
    trainings: [{ id: 'train', mpsSharePct: 80 }],
    ...extra,
  });
}

test('gpu model - reproduces the paper Fig. 4 mean latencies within 10%', () => {
  const profile = loadProfile(PROFILE);
  for (const c of FIG4_CASES) {
    const { meanMs } = measureFig4Case(profile, c, { seed: 42, durationMs: 120_000 });
    const errorPct = Math.abs(meanMs / c.paperMeanMs - 1) * 100;
    assert.ok(errorPct < 10, `${c.label}: model ${meanMs.toFixed(2)} ms vs paper ${c.paperMeanMs} ms (${errorPct.toFixed(1)}% off)`);
  }
});

test('gpu model - same seed gives identical results, another seed differs', () => {
  const run = (seed: number) => {
    const m = lightLoadModel({ seed, trainings: [{ id: 'train', mpsSharePct: 50, pacing: { mode: 'duty', duty: 0.4, periodMs: 100 } }] });
    m.advanceTo(5_000);
    m.setArrivalRate('inf', 120);
    m.setPacing('train', { mode: 'per-iteration', sleepMs: 300 });
    m.advanceTo(20_000);
    return { ...m.takeCompletions('inf'), iterations: m.trainingStatus('train').iterations };
  };
  assert.deepEqual(run(11), run(11));
  assert.notDeepEqual(run(11).completions, run(12).completions);
});

test('gpu model - a batch spanning a training phase change finishes its remaining work at the new speed', () => {
  const m = new GpuModel({
    profile: exactProfile(),
    services: [{ id: 'inf', batch: 1, rateRps: 0, arrival: 'closed' }],
    // The most sleep hardware allows: awake 0-50 ms, asleep 50-1000 ms.
    trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'duty', duty: 0.95, periodMs: 1000 } }],
  });
  m.advanceTo(100);
  assert.equal(m.trainingPhase('train'), 'asleep');
  m.setArrivalRate('inf', 0.001); // one batch at t=100
  m.advanceTo(104);
  m.setPacing('train', { mode: 'duty', duty: 0, periodMs: 100 }); // awake from t=106 (2 ms sleep change)
  const slowdown = 1 / m.currentInferenceSpeed();
  m.advanceTo(200);
  const [done] = m.takeCompletions('inf').completions;
  // 6 ms alone (6 of 10 ms of work), then the remaining 4 ms at 1 / (1 + I).
  const awakeSlowdown = 1 / m.currentInferenceSpeed();
  assert.equal(slowdown, 1);
  assert.ok(awakeSlowdown > 3);
  assert.ok(Math.abs(done!.latencyMs - (6 + 4 * awakeSlowdown)) < 1e-9, `latency ${done!.latencyMs}`);
});

test('gpu model - an MPS change restarts training for mpsRestartMs: no iterations, no interference', () => {
  for (const restartMs of [7_000, 3_000]) {
    const m = lightLoadModel({ mpsRestartMs: restartMs });
    m.advanceTo(10_000);
    m.setMpsShare('train', 40);
    const before = m.trainingStatus('train').iterations;
    assert.equal(m.trainingStatus('train').state, 'restarting');
    assert.equal(m.currentInferenceSpeed(), 1, 'a restarting job does not interfere');
    m.advanceTo(10_000 + restartMs - 1);
    assert.equal(m.trainingStatus('train').iterations, before, 'no progress while restarting');
    assert.equal(m.trainingStatus('train').state, 'restarting');
    m.advanceTo(10_000 + restartMs + 1);
    assert.equal(m.trainingStatus('train').state, 'running');
    assert.equal(m.trainingStatus('train').mpsSharePct, 40);
    m.advanceTo(10_000 + restartMs + 5_000);
    assert.ok(m.trainingStatus('train').iterations > before, 'runs again after the restart');
  }
  // A change during a restart restarts again from then.
  const m = lightLoadModel();
  m.advanceTo(1_000);
  m.setMpsShare('train', 40);
  m.advanceTo(5_000);
  m.setMpsShare('train', 60);
  m.advanceTo(11_000);
  assert.equal(m.trainingStatus('train').state, 'restarting');
  m.advanceTo(12_001);
  assert.equal(m.trainingStatus('train').state, 'running');
});

test('gpu model - a sleep change takes effect after about 2 ms', () => {
  // Asleep 5-100 ms of every 100 ms period (duty 0.95: the most sleep hardware allows); at 1_010 it sleeps.
  const m = lightLoadModel({ trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'duty', duty: 0.95, periodMs: 100 } }] });
  m.advanceTo(1_010);
  assert.equal(m.trainingPhase('train'), 'asleep');
  m.setPacing('train', { mode: 'duty', duty: 0, periodMs: 100 });
  m.advanceTo(1_011.9);
  assert.equal(m.trainingPhase('train'), 'asleep');
  m.advanceTo(1_012);
  assert.equal(m.trainingPhase('train'), 'awake');
  assert.deepEqual(m.trainingStatus('train').pacing, { mode: 'duty', duty: 0, periodMs: 100 });
  const slow = lightLoadModel({ sleepChangeMs: 50, trainings: [{ id: 'train', pacing: { mode: 'duty', duty: 0.95, periodMs: 100 } }] });
  slow.advanceTo(1_010);
  slow.setPacing('train', { mode: 'duty', duty: 0, periodMs: 100 });
  slow.advanceTo(1_059);
  assert.equal(slow.trainingPhase('train'), 'asleep', 'sleepChangeMs is configurable');
  slow.advanceTo(1_060);
  assert.equal(slow.trainingPhase('train'), 'awake');
});

test('gpu model - a duty above MAX_DUTY acts as MAX_DUTY: training is never paused outright', () => {
  assert.equal(MAX_DUTY, 0.95);
  const run = (duty: number) => {
    const m = lightLoadModel({ trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'duty', duty, periodMs: 100 } }] });
    m.advanceTo(60_000);
    return { progress: m.trainingProgress('train'), latencies: m.takeCompletions('inf').completions.map((c) => c.latencyMs) };
  };
  const capped = run(1);
  assert.deepEqual(capped, run(MAX_DUTY), 'duty 1 runs exactly as duty 0.95');
  assert.ok(capped.progress > 0, 'training still makes progress');
  const m = lightLoadModel({ trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'duty', duty: 1, periodMs: 100 } }] });
  assert.deepEqual(m.trainingStatus('train').pacing, { mode: 'duty', duty: 1, periodMs: 100 }, 'the status reports the pacing as set');
});

test('gpu model - a per-iteration sleep lasts at most MAX_DUTY of the time', () => {
  const model = (sleepMs: number) => new GpuModel({
    profile: loadProfile(PROFILE),
    services: [{ id: 'inf', batch: 6, rateRps: 1000, arrival: 'closed' }],
    trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'per-iteration', sleepMs } }],
  });
  // 400 ms iterations: a 60 s sleep is cut to 19 x 400 = 7.6 s (sleep / (sleep + iteration) = 0.95).
  const long = model(60_000);
  long.advanceTo(80_000);
  assert.equal(long.trainingStatus('train').iterations, 10);
  const cap = (400 * MAX_DUTY) / (1 - MAX_DUTY);
  const exact = model(cap);
  exact.advanceTo(80_000);
  assert.equal(exact.trainingStatus('train').iterations, 10, 'the same as a sleep of exactly the cap');
});

test('gpu model - per-iteration sleep follows each iteration', () => {
  const profile = loadProfile(PROFILE);
  const m = new GpuModel({
    profile,
    services: [{ id: 'inf', batch: 6, rateRps: 1000, arrival: 'closed' }],
    trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'per-iteration', sleepMs: 600 } }],
  });
  m.advanceTo(100_000);
  // 400 ms per iteration next to busy inference at 80%, then 600 ms asleep: one per second.
  assert.equal(m.trainingStatus('train').iterations, 100);
});

test('gpu model - more sleep duty gives lower latency and fewer iterations', () => {
  const results = [0, 0.3, 0.6, 0.9].map((duty) => {
    const m = lightLoadModel({ trainings: [{ id: 'train', mpsSharePct: 60, pacing: { mode: 'duty', duty, periodMs: 200 } }] });
    m.advanceTo(60_000);
    return { duty, meanMs: mean(m.takeCompletions('inf').completions.map((c) => c.latencyMs)), iterations: m.trainingProgress('train') };
  });
  for (let i = 1; i < results.length; i++) {
    assert.ok(results[i]!.meanMs < results[i - 1]!.meanMs, `latency falls with duty: ${JSON.stringify(results)}`);
    assert.ok(results[i]!.iterations < results[i - 1]!.iterations, `iterations fall with duty: ${JSON.stringify(results)}`);
  }
});

test('gpu model - more MPS share means more interference and faster training', () => {
  const results = [20, 50, 80, 100].map((mpsSharePct) => {
    const m = lightLoadModel({ trainings: [{ id: 'train', mpsSharePct }] });
    m.advanceTo(60_000);
    return { meanMs: mean(m.takeCompletions('inf').completions.map((c) => c.latencyMs)), iterations: m.trainingProgress('train') };
  });
  for (let i = 1; i < results.length; i++) {
    assert.ok(results[i]!.meanMs > results[i - 1]!.meanMs, JSON.stringify(results));
    assert.ok(results[i]!.iterations > results[i - 1]!.iterations, JSON.stringify(results));
  }
});

test('gpu model - requests queue when the GPU is overloaded, and a full queue drops', () => {
  // 6-batch = 4.55 ms alone; 300 rps is a 137% load even with training stopped.
  const m = lightLoadModel({ services: [{ id: 'inf', batch: 6, rateRps: 300 }], trainings: [{ id: 'train', running: false }] });
  m.advanceTo(10_000);
  const early = mean(m.takeCompletions('inf').completions.map((c) => c.latencyMs));
  m.advanceTo(20_000);
  const late = mean(m.takeCompletions('inf').completions.map((c) => c.latencyMs));
  assert.ok(late > early * 1.5 && late > 1_000, `latency grows with the backlog: ${early} -> ${late}`);
  assert.ok(m.serviceStats('inf').inSystem > 500);

  const capped = lightLoadModel({ queueCapacity: 100, services: [{ id: 'inf', batch: 6, rateRps: 300 }] });
  capped.advanceTo(20_000);
  const stats = capped.serviceStats('inf');
  assert.ok(stats.dropped > 0 && stats.inSystem <= 101, JSON.stringify(stats));
  assert.equal(stats.arrivals, stats.completions + stats.dropped + stats.inSystem);
});

test('gpu model - a light load sees about the service time; the arrival rate can change at any time', () => {
  const profile = loadProfile(PROFILE);
  const m = lightLoadModel({ trainings: [{ id: 'train', running: false }] });
  m.advanceTo(30_000);
  const light = m.takeCompletions('inf');
  assert.ok(Math.abs(light.arrivals / 30 - 50) < 5, `about 50 rps, got ${light.arrivals / 30}`);
  assert.ok(mean(light.completions.map((c) => c.latencyMs)) < serviceMs(profile, 6) * 1.2);
  m.setArrivalRate('inf', 150);
  m.advanceTo(60_000);
  assert.ok(Math.abs(m.takeCompletions('inf').arrivals / 30 - 150) < 10);
  m.setBatch('inf', 110);
  m.setArrivalRate('inf', 5);
  m.advanceTo(120_000);
  const alone = mean(m.takeCompletions('inf').completions.map((c) => c.latencyMs));
  assert.ok(alone > 50 && alone < 70, `testbed batch 110 alone: ${alone} ms`);
});

test('gpu model - a stopped job neither interferes nor progresses; starting it costs a restart', () => {
  const m = lightLoadModel();
  m.advanceTo(5_000);
  m.setTrainingRunning('train', false);
  const it = m.trainingStatus('train').iterations;
  assert.equal(m.trainingStatus('train').state, 'stopped');
  assert.equal(m.currentInferenceSpeed(), 1);
  m.advanceTo(20_000);
  assert.equal(m.trainingStatus('train').iterations, it);
  m.setTrainingRunning('train', true);
  assert.equal(m.trainingStatus('train').state, 'restarting');
  m.advanceTo(20_000 + m.mpsRestartMs + 1);
  assert.equal(m.trainingStatus('train').state, 'running');
});

test('gpu model - services share the GPU and slow each other', () => {
  const alone = lightLoadModel({ trainings: [] });
  const shared = lightLoadModel({ trainings: [], services: [{ id: 'inf', batch: 6, rateRps: 50 }, { id: 'big', batch: 100, rateRps: 10 }] });
  alone.advanceTo(60_000);
  shared.advanceTo(60_000);
  const a = mean(alone.takeCompletions('inf').completions.map((c) => c.latencyMs));
  const s = mean(shared.takeCompletions('inf').completions.map((c) => c.latencyMs));
  assert.ok(s > a * 1.5, `${a} -> ${s}`);
});

test('gpu model - bad ids and values throw GpuModelError naming the problem', () => {
  const m = lightLoadModel();
  assert.throws(() => m.takeCompletions('nope'), (e: unknown) => e instanceof GpuModelError && /unknown service "nope"; known: inf/.test(e.message));
  assert.throws(() => m.setMpsShare('train', 0), GpuModelError);
  assert.throws(() => m.setPacing('train', { mode: 'duty', duty: 2, periodMs: 100 }), /duty/);
  assert.throws(() => m.setArrivalRate('inf', -1), /rateRps/);
  assert.throws(() => m.trainingStatus('x'), /unknown training job "x"/);
});

test('gpu model - SimGpuDevice advances the model to an injected clock', async () => {
  const clock = new ManualClock(1_000);
  const device = createSimGpuDevice({
    profile: PROFILE,
    clock: clock.now,
    id: 'gpu-a',
    index: 2,
    seed: 5,
    services: [{ id: 'inf', batch: 6, rateRps: 40 }], // 14 ms per batch next to 80% training: a 57% load
    trainings: [{ id: 'train', mpsSharePct: 80 }],
  });
  assert.ok(device instanceof SimGpuDevice);
  assert.equal(device.info.backend, 'model');
  assert.equal(device.info.profile, PROFILE);
  assert.equal(device.info.id, 'gpu-a');
  assert.equal(device.info.index, 2);
  assert.equal(device.now(), 1_000);
  assert.equal(device.takeCompletions('inf').completions.length, 0);
  clock.advance(10_000); // ten simulated seconds, no real waiting
  const { completions, arrivals } = device.takeCompletions('inf');
  assert.ok(arrivals > 300 && completions.length > 300 && arrivals - completions.length < 20, `${arrivals} ${completions.length}`);
  assert.ok(completions.every((c) => c.tMs > 1_000 && c.tMs <= 11_000));
  assert.ok(device.trainingStatus('train').iterations >= 20);
  device.setPacing('train', { mode: 'duty', duty: 0.95, periodMs: 100 });
  clock.advance(8); // applied 2 ms after the call, awake 5 ms, then asleep
  device.now(); // the model moves only when the device is called
  assert.equal(device.model.trainingPhase('train'), 'asleep');
  device.setMpsShare('train', 30);
  assert.equal(device.trainingStatus('train').state, 'restarting');
  device.setTrainingRunning('train', false);
  assert.equal(device.trainingStatus('train').state, 'stopped');
  device.setBatch('inf', 110);
  device.setArrivalRate('inf', 5);
  assert.equal(device.now(), 11_008);
  await device.close();
  await device.close(); // idempotent
});

test('gpu model - inference under its own MPS cap runs at (share/100)^exponent of full speed', () => {
  const p = exactProfile(); // 10 ms batches, no jitter
  const alone = (inferenceSharePct: number) => {
    const m = new GpuModel({ profile: p, inferenceSharePct, services: [{ id: 'inf', batch: 1, rateRps: 10, arrival: 'closed' }], trainings: [] });
    assert.equal(m.inferenceSharePct, inferenceSharePct);
    assert.equal(m.inferenceRestarting, false, 'a share given at start costs no restart');
    m.advanceTo(2_000);
    return m.takeCompletions('inf').completions.map((c) => c.latencyMs);
  };
  assert.ok(alone(100).every((ms) => Math.abs(ms - 10) < 1e-9));
  assert.ok(alone(50).every((ms) => Math.abs(ms - 10 / Math.pow(0.5, 0.85)) < 1e-9), 'the default exponent 0.85');
  p.inference.mpsShareExponent = 0.3;
  assert.ok(alone(20).every((ms) => Math.abs(ms - 10 / Math.pow(0.2, 0.3)) < 1e-9), 'the profile\'s exponent');
  // Next to awake training the cap and the interference multiply.
  const m = new GpuModel({ profile: exactProfile(), inferenceSharePct: 60, services: [], trainings: [{ id: 'train', mpsSharePct: 40 }] });
  const i40 = 3.075 * Math.pow(0.4, 1.597);
  assert.ok(Math.abs(m.currentInferenceSpeed() - Math.pow(0.6, 0.85) / (1 + i40)) < 1e-12);
  assert.throws(() => m.setInferenceShare(0), (e: unknown) => e instanceof GpuModelError && /inferenceSharePct must be in 1\.\.100/.test(e.message));
});

test('gpu model - a change of inference\'s share restarts it: nothing is served meanwhile, the batch in service starts over', () => {
  const m = new GpuModel({
    profile: exactProfile(), inferenceRestartMs: 3_000,
    services: [{ id: 'inf', batch: 1, rateRps: 50 }],
    trainings: [{ id: 'train', mpsSharePct: 50, pacing: { mode: 'per-iteration', sleepMs: 0 } }],
  });
  // A closed-loop probe would wait; an open load queues. Find a moment with a batch in service.
  let t = 1_000;
  m.advanceTo(t);
  while (m.serviceStats('inf').inSystem === 0) m.advanceTo(++t);
  m.takeCompletions('inf');
  const itersBefore = m.trainingProgress('train');
  m.setInferenceShare(80);
  assert.equal(m.inferenceRestarting, true);
  assert.equal(m.currentInferenceSpeed(), 0);
  m.advanceTo(t + 2_999);
  assert.equal(m.takeCompletions('inf').completions.length, 0, 'no batch is served while inference restarts');
  assert.ok(m.serviceStats('inf').inSystem > 100, 'arrivals queue');
  // Training keeps running, and faster: no inference kernels run beside it.
  const restartIters = m.trainingProgress('train') - itersBefore;
  const speedAlone = Math.pow(0.5, 0.5) / 330, speedBusy = speedAlone / 1.0842;
  assert.ok(Math.abs(restartIters - 2_999 * speedAlone) < 0.01, `${restartIters} iterations while inference restarts`);
  m.advanceTo(t + 3_000);
  assert.equal(m.inferenceRestarting, false);
  assert.equal(m.inferenceSharePct, 80);
  m.advanceTo(t + 3_100);
  const [first] = m.takeCompletions('inf').completions;
  // The batch that was in service runs its full 10 ms again after the restart (at the new share, next to training).
  const i50 = 3.075 * Math.pow(0.5, 1.597);
  assert.ok(first!.tMs > t + 3_000 + 10 / (Math.pow(0.8, 0.85) / (1 + i50)) - 1e-6, `first completion at ${first!.tMs}`);
  assert.ok(first!.latencyMs > 3_000);
  assert.ok(speedBusy < speedAlone);
  // The same share again is no change: no restart.
  m.setInferenceShare(80);
  assert.equal(m.inferenceRestarting, false);
});

test('gpu model - tail batches see tailFactor x the interference, only while training is awake', () => {
  const p = exactProfile();
  p.interference.tailProb = 1; // every batch a tail batch: exact times
  p.interference.tailFactor = 4;
  const latency = (running: boolean) => {
    const m = new GpuModel({ profile: p, services: [{ id: 'inf', batch: 1, rateRps: 5, arrival: 'closed' }], trainings: [{ id: 'train', mpsSharePct: 50, running }] });
    m.advanceTo(2_000);
    return m.takeCompletions('inf').completions.map((c) => c.latencyMs);
  };
  const i50 = 3.075 * Math.pow(0.5, 1.597);
  assert.ok(latency(true).every((ms) => Math.abs(ms - 10 * (1 + 4 * i50)) < 1e-9), 'next to training: 1 + tailFactor * I');
  assert.ok(latency(false).every((ms) => Math.abs(ms - 10) < 1e-9), 'alone: as any other batch');
  // Tails drawn with their probability; the means move only by the tails' extra interference.
  const mixed = loadProfile(PROFILE);
  mixed.interference.tailProb = 0.1;
  mixed.interference.tailFactor = 5;
  const m = new GpuModel({ profile: mixed, seed: 3, services: [{ id: 'inf', batch: 6, rateRps: 20, arrival: 'closed' }], trainings: [{ id: 'train', mpsSharePct: 50 }] });
  m.advanceTo(300_000);
  const lat = m.takeCompletions('inf').completions.map((c) => c.latencyMs);
  const work = serviceMs(mixed, 6);
  const tails = lat.filter((ms) => ms > work * (1 + 3 * i50)).length / lat.length;
  assert.ok(Math.abs(tails - 0.1) < 0.015, `tail fraction ${tails}`);
});
