import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, SimulatedClock } from 'xstate';
import { fleetMachine, type FleetPlanSummary } from '../../actors/fleet.ts';
import { batchCostMs } from '../../control/index.ts';
import { SCHEMA_VERSION, type GpuStatusEvent } from '../../schemas/index.ts';

function status(gpu: string, services: Array<[string, number]>, trainings: string[] = []): GpuStatusEvent {
  return {
    v: SCHEMA_VERSION, type: 'gpu.status', host: 'h', gpu, tMs: 0, unixMs: 0, policy: 'gpucolo', state: 'controlling',
    services: services.map(([id, rateRps]) => ({ serviceId: id, sloMs: 25, p99Ms: 5, meanMs: 2.8, rateRps, runP99Ms: 5, sloWindows: 1, sloWindowsMet: 1 })),
    trainings: trainings.map((jobId) => ({ jobId, itersPerSec: 1, iterations: 1, state: 'running' as const })),
    mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: true, mpsChanges: 0, sleepChanges: 0,
  };
}

function harness() {
  const clock = new SimulatedClock();
  const plans: FleetPlanSummary[] = [];
  const announced: string[] = [];
  const actor = createActor(fleetMachine.provide({
    actions: {
      actuate: (_a, { plan }) => { plans.push(plan); },
      announce: (_a, { state }) => { announced.push(state); },
      readClock: ({ self }) => { self.send({ type: 'TICK', nowMs: clock.now(), wallMs: 0 }); },
    },
  }), { input: { fleetId: 'f', planPeriodMs: 1000, warmupMs: 3000 }, clock });
  actor.start();
  /** Every GPU reports once a second for `seconds`. */
  const run = (seconds: number, statuses: () => GpuStatusEvent[]) => {
    for (let i = 0; i < seconds; i++) {
      for (const s of statuses()) actor.send({ type: 'STATUS', status: s, nowMs: clock.now() });
      clock.increment(1000);
    }
  };
  return { clock, actor, plans, announced, run };
}

const light = () => [status('g0', [['a', 40]], ['t']), status('g1', [['b', 40]]), status('g2', [['c', 40]])];

test('fleet actor - a standby never plans; the lease holder plans after its warm-up and pins GPUs with moves in flight', () => {
  const h = harness();
  h.run(10, light);
  assert.equal(h.plans.length, 0, 'no lease, no plan');
  h.actor.send({ type: 'LEASE', held: true, revision: 1 });
  assert.deepEqual(h.announced, ['leading']);
  h.run(2, light);
  assert.equal(h.plans.length, 0, 'still warming up');
  h.run(3, light);
  assert.equal(h.plans.length, 1, 'one plan; its GPUs are pinned until the moves are done');
  const plan = h.plans[0]!;
  assert.ok(plan.gpusFreed >= 1 && plan.moves.length >= 1);
  h.run(5, light);
  assert.equal(h.plans.length, 1, 'pinned GPUs are not planned again');
  assert.equal(h.actor.getSnapshot().context.movesIssued, plan.moves.length);
  // Moves done and statuses showing the outcome: the fleet is packed, so nothing more moves.
  for (const m of plan.moves) h.actor.send({ type: 'MOVE_DONE', move: m, ok: true, nowMs: h.clock.now() });
  const packed = () => {
    const by: Record<string, GpuStatusEvent> = Object.fromEntries(light().map((s) => [`h/${s.gpu}`, { ...s, services: [...s.services], trainings: [...s.trainings] }]));
    for (const m of plan.moves) {
      const from = by[m.from]!, to = by[m.to]!;
      if (m.workload === 'service') { to.services.push(from.services.find((x) => x.serviceId === m.id)!); from.services = from.services.filter((x) => x.serviceId !== m.id); }
      else { to.trainings.push(from.trainings.find((x) => x.jobId === m.id)!); from.trainings = from.trainings.filter((x) => x.jobId !== m.id); }
    }
    return Object.values(by);
  };
  h.run(60, packed);
  assert.equal(h.plans.length, 1, 'no flapping once packed');
  assert.equal(h.actor.getSnapshot().context.movesDone, plan.moves.length);
  // Losing the lease stops planning at once.
  h.actor.send({ type: 'LEASE', held: false, revision: 9 });
  assert.deepEqual(h.announced, ['leading', 'standby']);
  assert.ok(h.actor.getSnapshot().matches('standby'));
});

test('fleet actor - batch cost from a measured mean: M/D/1 queueing taken out', () => {
  // s = 2.55 ms at 150/s (rho 0.38): the M/D/1 mean is s (1 + rho / (2 (1 - rho))) = 3.34 ms.
  const rho = 0.15 * 2.55;
  const mean = 2.55 * (1 + rho / (2 * (1 - rho)));
  assert.ok(Math.abs(batchCostMs(mean, 150) - 2.55) < 1e-6);
  assert.equal(batchCostMs(0, 150), 0);
  assert.ok(Math.abs(batchCostMs(4, 0) - 4) < 1e-6, 'no load: the mean is the cost');
});
