import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, SimulatedClock } from 'xstate';
import { gpuMachine, type Actuation } from '../../actors/gpu.ts';
import type { InferenceReport } from '../../actors/inference.ts';

function report(tMs: number, p99Ms: number, sloMs = 50): InferenceReport {
  return {
    seq: Math.round(tMs / 200), tMs, windowMs: 200, sloMs, count: 40, meanMs: p99Ms * 0.6, p50Ms: p99Ms * 0.5,
    p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, sloWindows: 0, sloWindowsMet: 0, runP99Ms: p99Ms,
  };
}

function harness() {
  const clock = new SimulatedClock();
  const actuations: Actuation[] = [];
  const safety: string[] = [];
  let released = 0;
  const actor = createActor(
    gpuMachine.provide({
      actions: {
        actuate: (_a, p) => { actuations.push(p); },
        publishSafety: (_a, p) => { safety.push(p.condition); },
        releaseTraining: () => { released++; },
        readClock: ({ self }) => { self.send({ type: 'CLOCK', tMs: clock.now() }); },
      },
    }),
    { input: { host: 'h', gpu: 'g0', policy: 'gpucolo' }, clock },
  );
  actor.start();
  return { clock, actor, actuations, safety, released: () => released };
}

test('gpu actor - latency above the SLO raises training sleep; the decision carries its reason', () => {
  const { clock, actor, actuations } = harness();
  for (let t = 200; t <= 3000; t += 200) {
    actor.send({ type: 'WINDOW', serviceId: 's', report: report(t, 80) });
    clock.increment(200);
  }
  const moved = actuations.filter((a) => a.decisions.some((d) => d.knob === 'pacing'));
  assert.ok(moved.length > 0, 'pacing moved');
  const last = actor.getSnapshot().context.knobs.pacing;
  assert.equal(last.mode, 'duty');
  assert.ok(last.mode === 'duty' && last.duty > 0.3, `duty rose under a violated SLO (${JSON.stringify(last)})`);
  assert.ok(moved.every((a) => a.decisions.every((d) => d.reason.length > 0)));
  assert.ok(actor.getSnapshot().context.sleepChanges > 0);
});

test('gpu actor - the tightest SLO of several services drives', () => {
  const loose = harness();
  const both = harness();
  for (let t = 200; t <= 3000; t += 200) {
    loose.actor.send({ type: 'WINDOW', serviceId: 'a', report: report(t, 30, 100) });
    both.actor.send({ type: 'WINDOW', serviceId: 'a', report: report(t, 30, 100) });
    both.actor.send({ type: 'WINDOW', serviceId: 'b', report: report(t, 30, 20) });
    loose.clock.increment(200);
    both.clock.increment(200);
  }
  const duty = (h: ReturnType<typeof harness>) => {
    const p = h.actor.getSnapshot().context.knobs.pacing;
    return p.mode === 'duty' ? p.duty : 0;
  };
  assert.ok(duty(both) > duty(loose), `a second, tighter service raises the duty (${duty(both)} > ${duty(loose)})`);
});

test('gpu actor - lost telemetry moves training to the safe duty, says so, and restores the controller knobs', () => {
  const { clock, actor, safety } = harness();
  actor.send({ type: 'WINDOW', serviceId: 's', report: report(200, 10) });
  clock.increment(200);
  const before = actor.getSnapshot().context.knobs;
  for (let i = 0; i < 9; i++) clock.increment(200);
  assert.deepEqual(safety, [], 'two seconds of silence are tolerated');
  for (let i = 0; i < 2; i++) clock.increment(200);
  assert.deepEqual(safety, ['telemetry-lost']);
  assert.ok(actor.getSnapshot().matches({ running: { mode: 'safe' } }));
  const p = actor.getSnapshot().context.knobs.pacing;
  assert.ok(p.mode === 'duty' && p.duty === 0.9, 'safe duty is high but never a full pause');
  actor.send({ type: 'WINDOW', serviceId: 's', report: report(2600, 10) });
  assert.deepEqual(safety, ['telemetry-lost', 'telemetry-restored']);
  assert.ok(actor.getSnapshot().matches({ running: { mode: 'controlling' } }));
  assert.deepEqual(actor.getSnapshot().context.knobs, before, 'the controller resumes from its own knobs, not the safe duty');
});

test('gpu actor - stopping releases training and the snapshot is plain data', () => {
  const { clock, actor, released, safety } = harness();
  actor.send({ type: 'WINDOW', serviceId: 's', report: report(200, 10) });
  clock.increment(200);
  const persisted = actor.getPersistedSnapshot() as unknown as { context: unknown; value: unknown };
  assert.deepEqual(JSON.parse(JSON.stringify(persisted.context)), persisted.context, 'context survives JSON');
  assert.deepEqual(JSON.parse(JSON.stringify(persisted.value)), persisted.value);
  actor.send({ type: 'STOP' });
  assert.equal(released(), 1);
  assert.equal(safety.at(-1), 'shutdown');
  assert.equal(actor.getSnapshot().status, 'done');
});

test('gpu actor - a service whose workload is down holds training at the safe duty until it is back and serving', () => {
  const { clock, actor, safety } = harness();
  actor.send({ type: 'WINDOW', serviceId: 's', report: report(200, 10) });
  clock.increment(200);
  actor.send({ type: 'WORKLOAD_DOWN', serviceId: 's', detail: 'service s: inference pid 7 exited on its own (code 3)' });
  let snap = actor.getSnapshot();
  assert.ok(snap.matches({ running: { mode: 'safe' } }), 'safe at once, before any window goes missing');
  assert.equal(snap.context.knobs.pacing.mode === 'duty' && snap.context.knobs.pacing.duty, 0.9);
  assert.deepEqual(safety, ['telemetry-lost']);
  // Empty windows keep coming while it is down: they do not restore control.
  for (let t = 400; t <= 1000; t += 200) { actor.send({ type: 'WINDOW', serviceId: 's', report: { ...report(t, 0), count: 0 } }); clock.increment(200); }
  assert.ok(actor.getSnapshot().matches({ running: { mode: 'safe' } }));
  actor.send({ type: 'WORKLOAD_UP', serviceId: 's' });
  actor.send({ type: 'WINDOW', serviceId: 's', report: report(1200, 10) });
  snap = actor.getSnapshot();
  assert.ok(snap.matches({ running: { mode: 'controlling' } }), 'back and serving: control resumes');
  assert.deepEqual(safety, ['telemetry-lost', 'telemetry-restored']);
  actor.stop();
});

test('gpu actor - a fixed MPS share: no policy, tier or policy change moves it; the inner tier still paces', () => {
  const clock = new SimulatedClock();
  const actuations: Actuation[] = [];
  const actor = createActor(
    gpuMachine.provide({ actions: { actuate: (_a, p) => { actuations.push(p); }, readClock: ({ self }) => { self.send({ type: 'CLOCK', tMs: clock.now() }); } } }),
    // gslice moves the share every outer period (25 s) and starts from another share than 40.
    { input: { host: 'h', gpu: 'g0', policy: 'gslice', knobs: { mpsSharePct: 40, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: true }, mpsShareFixed: true }, clock },
  );
  actor.start();
  for (let t = 200; t <= 60_000; t += 200) {
    actor.send({ type: 'WINDOW', serviceId: 's', report: report(t, t < 30_000 ? 80 : 5) });
    clock.increment(200);
  }
  actor.send({ type: 'SET_POLICY', policy: 'gpucolo' });
  for (let t = 60_200; t <= 63_000; t += 200) {
    actor.send({ type: 'WINDOW', serviceId: 's', report: report(t, 80) });
    clock.increment(200);
  }
  assert.ok(actuations.every((a) => a.knobs.mpsSharePct === 40), `share moved: ${[...new Set(actuations.map((a) => a.knobs.mpsSharePct))].join(', ')}`);
  assert.equal(actor.getSnapshot().context.mpsChanges, 0);
  assert.ok(actuations.some((a) => a.decisions.some((d) => d.knob === 'pacing')), 'the inner tier paced training');
  actor.stop();
});

test('gpu actor - a window and its decision are written in place: no context copy per window, new knobs and services objects on a change', () => {
  const { clock, actor, actuations } = harness();
  let knobs = actor.getSnapshot().context.knobs;
  let knobChanges = 0;
  actor.send({ type: 'WINDOW', serviceId: 's', report: report(200, 80) });
  clock.increment(200);
  const services = actor.getSnapshot().context.services;
  for (let t = 400; t <= 3000; t += 200) {
    const before = actor.getSnapshot().context;
    actor.send({ type: 'WINDOW', serviceId: 's', report: report(t, 80) });
    const c = actor.getSnapshot().context;
    assert.equal(c, before, 'the same context object: a window copies no context');
    assert.equal(c.tMs, t);
    assert.equal(c.lastWindowTMs, t);
    assert.equal(c.lastInnerTMs, t, 'a decision every inner period');
    if (c.knobs !== knobs) { knobChanges++; knobs = c.knobs; }
    clock.increment(200);
  }
  // What a saved state compares by reference (runners/host keepStateSaved): a change of knobs is a new object.
  if (actor.getSnapshot().context.knobs !== knobs) knobChanges++;
  const moves = actuations.filter((a) => a.tier === 'inner' && a.knobs !== a.old);
  assert.ok(moves.length > 0 && knobChanges > 0, 'the decisions moved the knobs, each to a new knobs object');
  assert.equal(actor.getSnapshot().context.services, services, 'the same service: the same services object');
  actor.send({ type: 'WINDOW', serviceId: 't', report: report(3200, 10) });
  assert.notEqual(actor.getSnapshot().context.services, services, 'a new service: a new services object');
  assert.deepEqual(Object.keys(actor.getSnapshot().context.services), ['s', 't']);
});
