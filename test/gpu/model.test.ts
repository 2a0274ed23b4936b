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
    services: [{ id: 'inf', batch: 1, rateRps: 0.001, arrival: 'closed' }], // one batch at t=0
    trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'duty', duty: 1, periodMs: 100 } }], // asleep
  });
  m.advanceTo(4);
  m.setPacing('train', { mode: 'duty', duty: 0, periodMs: 100 }); // awake from t=6 (2 ms sleep change)
  const slowdown = 1 / m.currentInferenceSpeed();
  m.advanceTo(100);
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
  const m = lightLoadModel({ trainings: [{ id: 'train', mpsSharePct: 80, pacing: { mode: 'duty', duty: 0, periodMs: 100 } }] });
  m.advanceTo(1_000);
  m.setPacing('train', { mode: 'duty', duty: 1, periodMs: 100 });
  m.advanceTo(1_001.9);
  assert.equal(m.trainingPhase('train'), 'awake');
  m.advanceTo(1_002);
  assert.equal(m.trainingPhase('train'), 'asleep');
  assert.deepEqual(m.trainingStatus('train').pacing, { mode: 'duty', duty: 1, periodMs: 100 });
  const slow = lightLoadModel({ sleepChangeMs: 50, trainings: [{ id: 'train', pacing: { mode: 'duty', duty: 0, periodMs: 100 } }] });
  slow.advanceTo(1_000);
  slow.setPacing('train', { mode: 'duty', duty: 1, periodMs: 100 });
  slow.advanceTo(1_049);
  assert.equal(slow.trainingPhase('train'), 'awake', 'sleepChangeMs is configurable');
  slow.advanceTo(1_050);
  assert.equal(slow.trainingPhase('train'), 'asleep');
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
  device.setPacing('train', { mode: 'duty', duty: 1, periodMs: 100 });
  clock.advance(3);
  device.now(); // the model moves only when the device is called
  assert.equal(device.model.trainingPhase('train'), 'asleep');
  device.setMpsShare('train', 30);
  assert.equal(device.trainingStatus('train').state, 'restarting');
  device.setTrainingRunning('train', false);
  assert.equal(device.trainingStatus('train').state, 'stopped');
  device.setBatch('inf', 110);
  device.setArrivalRate('inf', 5);
  assert.equal(device.now(), 11_003);
  await device.close();
  await device.close(); // idempotent
});
