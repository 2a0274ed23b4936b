/**
 * One simulated GPU under one policy, without the bus: the same windows (200 ms), merges and periods as the
 * GPU actor, and a request-rate burst from 40% to 65% of the run. Prints a line every EVERY ms (default
 * 5000) and a closing line: 1 s-window p99 attainment, training it/s, knob changes.
 *
 *   node --import tsx bench/control-trace.ts [policy] [batch] [rateRps] [sloMs] [burst] [durationS] [seed]
 *   OPTS='{"marginPct":40}' node --import tsx bench/control-trace.ts gpucolo 2 150 25 1.5 120 1
 */
import { summarizePeriod, type InferenceContext } from '../actors/inference.ts';
import { emptySecondWindows } from '../actors/latency-seconds.ts';
import { createPolicy, isPolicyName, mergeWindows, pacingValue, type Knobs, type LatencyWindow, type StepResult } from '../control/index.ts';
import { GpuModel, loadProfile } from '../gpu/model/index.ts';

const [policyArg = 'gpucolo', batch = '2', rate = '150', slo = '25', burst = '1.5', durationArg = '120', seed = '1'] = process.argv.slice(2);
if (!isPolicyName(policyArg)) throw new Error(`unknown policy ${policyArg}`);
const rateRps = Number(rate);
const sloMs = Number(slo);
const durationMs = Number(durationArg) * 1000;
const everyMs = Number(process.env.EVERY ?? 5000);
const windowMs = 200;

const policy = createPolicy(policyArg, JSON.parse(process.env.OPTS ?? '{}'));
let state = policy.initialState();
let knobs = policy.initialKnobs();
const model = new GpuModel({
  profile: loadProfile('rtx3090-resnet50-wrn101'),
  seed: Number(seed),
  services: [{ id: 'svc', batch: Number(batch), rateRps }],
  trainings: [{ id: 'job', mpsSharePct: knobs.mpsSharePct, pacing: knobs.pacing, running: knobs.trainingRunning }],
});
let mpsChanges = 0;
let sleepChanges = 0;
const apply = (next: StepResult<unknown>) => {
  const k: Knobs = next.knobs;
  if (k.mpsSharePct !== knobs.mpsSharePct) { mpsChanges++; model.setMpsShare('job', k.mpsSharePct); }
  if (pacingValue(k.pacing) !== pacingValue(knobs.pacing) || k.pacing.mode !== knobs.pacing.mode) { sleepChanges++; model.setPacing('job', k.pacing); }
  if (k.trainingRunning !== knobs.trainingRunning) model.setTrainingRunning('job', k.trainingRunning);
  state = next.state;
  knobs = k;
};

let inference: InferenceContext = {
  host: 'h', gpu: 'g', serviceId: 'svc', sloMs, rateRps, periodMs: windowMs, seq: 0, lastTMs: -1, seconds: emptySecondWindows(), histogram: {},
};
let innerWindows: LatencyWindow[] = [];
let outerWindows: LatencyWindow[] = [];
let nextInnerMs = policy.innerPeriodMs;
let nextOuterMs = policy.outerPeriodMs;
let lastIterations = 0;
for (let t = windowMs; t <= durationMs; t += windowMs) {
  if (t === Math.ceil((durationMs * 0.4) / windowMs) * windowMs) model.setArrivalRate('svc', rateRps * Number(burst));
  if (t === Math.ceil((durationMs * 0.65) / windowMs) * windowMs) model.setArrivalRate('svc', rateRps);
  model.advanceTo(t);
  const { completions, arrivals } = model.takeCompletions('svc');
  const { report, seconds, histogram } = summarizePeriod(inference, { type: 'SAMPLES', tMs: t, completions, arrivals });
  inference = { ...inference, seq: report.seq, lastTMs: t, seconds, histogram };
  const { seq: _s, tMs: _t, sloWindows: _w, sloWindowsMet: _m, runP99Ms: _r, ...latency } = report;
  innerWindows.push({ ...latency, serviceId: 'svc' });
  outerWindows.push({ ...latency, serviceId: 'svc' });
  const training = model.trainingStatus('job');
  const trainings = [{ jobId: 'job', itersPerSec: 0, running: training.state === 'running' }];
  if (t >= nextInnerMs) {
    nextInnerMs += policy.innerPeriodMs;
    apply(policy.inner(state, { nowMs: t, services: [mergeWindows(innerWindows)], trainings, knobs }));
    innerWindows = [];
  }
  if (t >= nextOuterMs) {
    nextOuterMs += policy.outerPeriodMs;
    apply(policy.outer(state, { nowMs: t, services: [mergeWindows(outerWindows)], trainings, knobs }));
    outerWindows = [];
  }
  if (t % everyMs === 0) {
    const itPerSec = ((training.iterations - lastIterations) * 1000) / everyMs;
    lastIterations = training.iterations;
    console.log(`t=${t / 1000}s p99=${report.p99Ms.toFixed(1)}ms rate=${report.rateRps.toFixed(0)}rps sleep=${pacingValue(knobs.pacing).toFixed(2)} mps=${knobs.mpsSharePct}% train=${itPerSec.toFixed(2)}it/s attained=${report.sloWindowsMet}/${report.sloWindows}`);
  }
}
const iterations = model.trainingStatus('job').iterations;
console.log(`FINAL att=${inference.seconds.windowsMet}/${inference.seconds.windows} it/s=${(iterations / (durationMs / 1000)).toFixed(3)} mpsChanges=${mpsChanges} sleepChanges=${sleepChanges}`);
