import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nearestRank } from '../../control/index.ts';
import { GpuModel, loadProfile, serviceMs } from '../../gpu/model/index.ts';
import { fluidGpu, type FluidPacing } from '../../sim/index.ts';

// One GPU both ways on the same load: gpu/model's per-request simulation and the fleet simulator's fluid
// steady state. Attainment = fraction of 1 s windows whose p99 meets the SLO, as the control bench scores it.
const profile = loadProfile('rtx3090-resnet50-wrn101');
const BATCH = 2;
const S = serviceMs(profile, BATCH);
const DURATION_MS = 120_000;

function perRequest(rho: number, sharePct: number, pacing: FluidPacing, sloMs: number) {
  const model = new GpuModel({
    profile, seed: 11,
    services: [{ id: 's', batch: BATCH, rateRps: (rho / S) * 1000, arrival: 'poisson' }],
    trainings: sharePct > 0 ? [{ id: 'j', mpsSharePct: sharePct, pacing: pacing.mode === 'duty' ? pacing : { mode: 'per-iteration', sleepMs: pacing.sleepMs } }] : [],
  });
  let met = 0, windows = 0;
  const all: number[] = [];
  for (let t = 1000; t <= DURATION_MS; t += 1000) {
    model.advanceTo(t);
    const lat = model.takeCompletions('s').completions.map((c) => c.latencyMs).sort((a, b) => a - b);
    all.push(...lat);
    if (lat.length === 0) continue;
    windows++;
    if (nearestRank(lat, 99) <= sloMs) met++;
  }
  all.sort((a, b) => a - b);
  const trainingSpeed = sharePct > 0 ? model.trainingProgress('j') / (DURATION_MS / profile.training.iterAloneMs) : 0;
  return { attainment: met / windows, p99Ms: nearestRank(all, 99), trainingSpeed };
}

/** Fluid attainment: a 1 s window of n requests meets the SLO when at most 1% of them exceed it (binomial). */
function fluidAttainment(overSlo: number, n: number): number {
  const allowed = Math.floor(0.01 * n);
  let p = 0, term = Math.pow(1 - overSlo, n);
  for (let k = 0; k <= allowed; k++) {
    p += term;
    term *= ((n - k) / (k + 1)) * (overSlo / Math.max(1e-12, 1 - overSlo));
  }
  return Math.min(1, p);
}

const CASES: { name: string; rho: number; sharePct: number; pacing: FluidPacing; sloMs: number }[] = [
  { name: 'inference alone, 30% busy', rho: 0.3, sharePct: 0, pacing: { mode: 'duty', duty: 1, periodMs: 50 }, sloMs: 10 },
  { name: 'training at 50% MPS, no sleep', rho: 0.2, sharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, sloMs: 25 },
  { name: 'training at 30% MPS, duty 0.2', rho: 0.2, sharePct: 30, pacing: { mode: 'duty', duty: 0.2, periodMs: 50 }, sloMs: 15 },
  { name: 'training at 100% MPS, duty 0.5', rho: 0.1, sharePct: 100, pacing: { mode: 'duty', duty: 0.5, periodMs: 50 }, sloMs: 25 },
  { name: 'the paper\'s pacing: 300 ms sleep per iteration', rho: 0.1, sharePct: 50, pacing: { mode: 'per-iteration', sleepMs: 300 }, sloMs: 15 },
];

for (const c of CASES) {
  test(`sim physics - agrees with gpu/model within 5%: ${c.name}`, () => {
    const des = perRequest(c.rho, c.sharePct, c.pacing, c.sloMs);
    const fluid = fluidGpu({ profile, rho: c.rho, serviceMs: S, trainings: c.sharePct > 0 ? [{ sharePct: c.sharePct, demand: 1 }] : [], pacing: c.pacing }, c.sloMs);
    const n = (c.rho / S) * 1000;
    const att = fluidAttainment(fluid.overSlo, Math.round(n));
    assert.ok(Math.abs(att - des.attainment) <= 0.05, `attainment: fluid ${att.toFixed(3)}, per-request ${des.attainment.toFixed(3)}`);
    if (c.sharePct > 0) {
      const rel = Math.abs(fluid.trainingSpeed[0]! - des.trainingSpeed) / des.trainingSpeed;
      assert.ok(rel <= 0.05, `training speed: fluid ${fluid.trainingSpeed[0]!.toFixed(3)}, per-request ${des.trainingSpeed.toFixed(3)}`);
    }
    console.log(`${c.name}: attainment fluid ${att.toFixed(3)} per-request ${des.attainment.toFixed(3)}; p99 fluid ${fluid.p99Ms.toFixed(2)} per-request ${des.p99Ms.toFixed(2)} ms; training fluid ${(fluid.trainingSpeed[0] ?? 0).toFixed(3)} per-request ${des.trainingSpeed.toFixed(3)}`);
    // The tail itself, as a check on the shape (not only on which side of the SLO it falls).
    assert.ok(Math.abs(fluid.p99Ms - des.p99Ms) / des.p99Ms <= 0.12, `p99: fluid ${fluid.p99Ms.toFixed(2)} ms, per-request ${des.p99Ms.toFixed(2)} ms`);
  });
}

test('sim physics - overload: the period\'s capacity below the load means no finite tail', () => {
  const r = fluidGpu({ profile, rho: 0.7, serviceMs: S, trainings: [{ sharePct: 100, demand: 1 }], pacing: { mode: 'duty', duty: 0.1, periodMs: 50 } });
  assert.equal(r.p99Ms, Infinity);
  const ok = fluidGpu({ profile, rho: 0.7, serviceMs: S, trainings: [{ sharePct: 100, demand: 1 }], pacing: { mode: 'duty', duty: 0.9, periodMs: 50 } });
  assert.ok(Number.isFinite(ok.p99Ms) && ok.trainingSpeed[0]! < 0.1);
});
