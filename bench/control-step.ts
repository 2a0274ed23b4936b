/**
 * CPU per control step, in one process: the gpucolo inner tier alone (control/gpucolo-inner.ts, one service,
 * windows alternating over and under the SLO as in `gpucolo bench fleet`), and the GPU actor taking the same
 * windows (actors/gpu.ts: the window written into its context, the decision, the actuation handed on; no bus).
 * The policy starts afresh every 1000 windows, as the fleet bench's round trip does once it settles.
 *
 *   node --import tsx bench/control-step.ts [windows]      (default 20000 timed, after as many untimed)
 */
import { createActor } from 'xstate';
import { gpuMachine } from '../actors/index.ts';
import { createPolicy, type Knobs, type LatencyWindow } from '../control/index.ts';

const n = Number(process.argv[2] ?? 20_000);
if (!(Number.isInteger(n) && n >= 1000)) throw new Error(`windows must be an integer >= 1000, got ${process.argv[2]}`);
const p99Of = (i: number) => (i % 4 === 0 ? 40 : 5);

/** Microseconds per window of `step(i)`: n windows untimed (the JIT warms), then n timed. */
function usPerWindow(step: (i: number) => void): number {
  let i = 0;
  const run = () => {
    const t0 = performance.now();
    for (const end = i + n; i < end; i++) step(i);
    return ((performance.now() - t0) / n) * 1000;
  };
  run();
  return run();
}

function innerTier(): number {
  const p = createPolicy('gpucolo', {});
  let state = p.initialState();
  let knobs: Knobs = p.initialKnobs();
  return usPerWindow((i) => {
    const p99Ms = p99Of(i);
    const w: LatencyWindow = { serviceId: 'svc', sloMs: 25, count: 40, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, windowMs: 200 };
    const r = p.inner(state, { nowMs: (i + 1) * 200, services: [w], trainings: [{ jobId: 'job', running: true, itersPerSec: 2 }], knobs });
    state = r.state;
    knobs = r.knobs;
    if (i % 1000 === 999) { state = p.initialState(); knobs = p.initialKnobs(); }
  });
}

function gpuActor(): number {
  const gpu = createActor(gpuMachine.provide({
    actions: { actuate: () => {}, publishStatus: () => {}, publishSafety: () => {}, releaseTraining: () => {}, readClock: () => {} },
  }), { input: { host: 'h', gpu: 'g', policy: 'gpucolo', statusPeriodMs: 1e9, mpsShareFixed: true } });
  gpu.start();
  gpu.send({ type: 'PROGRESS', jobId: 'job', report: { seq: 1, tMs: 0, windowMs: 200, iterations: 1, itersPerSec: 2, state: 'running', mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 } } });
  const us = usPerWindow((i) => {
    const p99Ms = p99Of(i);
    gpu.send({ type: 'WINDOW', serviceId: 'svc', report: { seq: i + 1, tMs: (i + 1) * 200, windowMs: 200, sloMs: 25, count: 40, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, sloWindows: 0, sloWindowsMet: 0, runP99Ms: p99Ms } });
    if (i % 1000 === 999) gpu.send({ type: 'SET_POLICY', policy: 'gpucolo' });
  });
  gpu.stop();
  return us;
}

const inner = innerTier();
const actor = gpuActor();
console.log(`windows timed: ${n} each (after as many untimed)`);
console.log(`gpucolo inner tier, us per window:             ${inner.toFixed(1)}`);
console.log(`GPU actor (window, decision, actuation), us:   ${actor.toFixed(1)}`);
