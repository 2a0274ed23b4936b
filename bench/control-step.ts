/**
 * CPU and allocation per control step, in one process: the gpucolo inner tier alone (control/gpucolo-inner.ts, one
 * service, windows alternating over and under the SLO as in `gpucolo bench fleet`), and the GPU actor taking the same
 * windows (actors/gpu.ts: the window written into its context, the decision, the actuation handed on; no bus).
 * The policy starts afresh every 1000 windows, as the fleet bench's round trip does once it settles. Allocation is
 * read with V8's sampling heap profiler (node:inspector) over n more windows, split by who allocated: xstate, the
 * control/ policy code, the rest (the actor's own code, the bench's windows, V8 built-ins called from either).
 *
 *   node --import tsx bench/control-step.ts [windows]      (default 20000 timed, after as many untimed)
 */
import { Session } from 'node:inspector/promises';
import { createActor } from 'xstate';
import { gpuMachine } from '../actors/index.ts';
import { createPolicy, type Knobs, type LatencyWindow } from '../control/index.ts';

const n = Number(process.argv[2] ?? 20_000);
if (!(Number.isInteger(n) && n >= 1000)) throw new Error(`windows must be an integer >= 1000, got ${process.argv[2]}`);
const p99Of = (i: number) => (i % 4 === 0 ? 40 : 5);

interface StepCost { us: number; bytes: number; byWho: Record<'xstate' | 'control' | 'rest', number> }

const session = new Session();
session.connect();

/** Who allocated a sample: the nearest frame on its stack that names a file (built-ins name none). */
function who(url: string, parent: keyof StepCost['byWho']): keyof StepCost['byWho'] {
  if (!url) return parent;
  if (url.includes('/node_modules/xstate/')) return 'xstate';
  return url.includes('/control/') && !url.includes('/bench/') ? 'control' : 'rest';
}

/**
 * Microseconds per window of `step(i)`: n windows untimed (the JIT warms), then n timed; then bytes allocated per
 * window over n more, every sample kept (those collected since included).
 */
async function cost(step: (i: number) => void): Promise<StepCost> {
  let i = 0;
  const run = () => {
    const t0 = performance.now();
    for (const end = i + n; i < end; i++) step(i);
    return ((performance.now() - t0) / n) * 1000;
  };
  run();
  const us = run();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  run();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  await session.post('HeapProfiler.disable');
  const byWho = { xstate: 0, control: 0, rest: 0 };
  const walk = (node: typeof profile.head, parent: keyof StepCost['byWho']) => {
    const w = who(node.callFrame.url, parent);
    byWho[w] += node.selfSize / n;
    for (const c of node.children) walk(c, w);
  };
  walk(profile.head, 'rest');
  return { us, bytes: byWho.xstate + byWho.control + byWho.rest, byWho };
}

function innerTier(): Promise<StepCost> {
  const p = createPolicy('gpucolo', {});
  let state = p.initialState();
  let knobs: Knobs = p.initialKnobs();
  return cost((i) => {
    const p99Ms = p99Of(i);
    const w: LatencyWindow = { serviceId: 'svc', sloMs: 25, count: 40, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, windowMs: 200 };
    const r = p.inner(state, { nowMs: (i + 1) * 200, services: [w], trainings: [{ jobId: 'job', running: true, itersPerSec: 2 }], knobs });
    state = r.state;
    knobs = r.knobs;
    if (i % 1000 === 999) { state = p.initialState(); knobs = p.initialKnobs(); }
  });
}

async function gpuActor(): Promise<StepCost> {
  const gpu = createActor(gpuMachine.provide({
    actions: { actuate: () => {}, publishStatus: () => {}, publishSafety: () => {}, releaseTraining: () => {}, readClock: () => {} },
  }), { input: { host: 'h', gpu: 'g', policy: 'gpucolo', statusPeriodMs: 1e9, mpsShareFixed: true } });
  gpu.start();
  gpu.send({ type: 'PROGRESS', jobId: 'job', report: { seq: 1, tMs: 0, windowMs: 200, iterations: 1, itersPerSec: 2, state: 'running', mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 } } });
  const c = await cost((i) => {
    const p99Ms = p99Of(i);
    gpu.send({ type: 'WINDOW', serviceId: 'svc', report: { seq: i + 1, tMs: (i + 1) * 200, windowMs: 200, sloMs: 25, count: 40, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, sloWindows: 0, sloWindowsMet: 0, runP99Ms: p99Ms } });
    if (i % 1000 === 999) gpu.send({ type: 'SET_POLICY', policy: 'gpucolo' });
  });
  gpu.stop();
  return c;
}

const inner = await innerTier();
const actor = await gpuActor();
session.disconnect();
const kb = (x: number) => (x / 1000).toFixed(1).padStart(6);
console.log(`windows timed: ${n} each (after as many untimed); allocation over ${n} more`);
console.log('step                                      us/window  KB/window  xstate  control/  rest');
for (const [name, c] of [['gpucolo inner tier', inner], ['GPU actor (window, decision, actuation)', actor]] as const) {
  console.log(`${name.padEnd(40)}  ${c.us.toFixed(1).padStart(9)}  ${kb(c.bytes).padStart(9)}  ${kb(c.byWho.xstate)}  ${kb(c.byWho.control).padStart(8)}  ${kb(c.byWho.rest)}`);
}
