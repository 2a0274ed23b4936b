import { GpuModel, loadProfile } from '../gpu/model/index.ts';
import { createPolicy, mergeWindows } from '../control/index.ts';
import { summarizePeriod, type InferenceContext } from '../actors/inference.ts';
import { emptySecondWindows } from '../actors/latency-seconds.ts';
const [policyName='gpucolo', batch='8', rate='60', slo='40', burst='1.5', dur='120', seedArg='7'] = process.argv.slice(2);
const model = new GpuModel({ profile: loadProfile('rtx3090-resnet50-wrn101'), seed: +seedArg, services: [{ id: 's', batch: +batch, rateRps: +rate }], trainings: [{ id: 'j' }] });
const policy = createPolicy(policyName as any, JSON.parse(process.env.OPTS ?? '{}'));
let state = policy.initialState(); let knobs = policy.initialKnobs();
const apply = (k: any) => { model.setPacing('j', k.pacing); if (k.mpsSharePct !== knobs.mpsSharePct) model.setMpsShare('j', k.mpsSharePct); model.setTrainingRunning('j', k.trainingRunning); };
model.setPacing('j', knobs.pacing); model.setMpsShare('j', knobs.mpsSharePct); model.setTrainingRunning('j', knobs.trainingRunning);
let ctx: InferenceContext = { host: 'h', gpu: 'g', serviceId: 's', sloMs: +slo, rateRps: +rate, periodMs: 200, seq: 0, lastTMs: -1, seconds: emptySecondWindows(), histogram: {} };
let inner: any[] = [], outer: any[] = []; let nextInner = policy.innerPeriodMs, nextOuter = policy.outerPeriodMs;
const D = +dur * 1000; let burstOn = false, burstOff = false; let lastIt = 0; let mps = 0, sl = 0;
for (let t = 200; t <= D; t += 200) {
  if (!burstOn && t >= D * 0.4) { burstOn = true; model.setArrivalRate('s', +rate * +burst); }
  if (!burstOff && t >= D * 0.65) { burstOff = true; model.setArrivalRate('s', +rate); }
  model.advanceTo(t);
  const { completions, arrivals } = model.takeCompletions('s');
  const r = summarizePeriod(ctx, { type: 'SAMPLES', tMs: t, completions, arrivals });
  ctx = { ...ctx, seq: r.report.seq, lastTMs: t, seconds: r.seconds, histogram: r.histogram };
  const w = { serviceId: 's', sloMs: +slo, count: r.report.count, meanMs: r.report.meanMs, p50Ms: r.report.p50Ms, p95Ms: r.report.p95Ms, p99Ms: r.report.p99Ms, maxMs: r.report.maxMs, rateRps: r.report.rateRps, windowMs: 200 };
  inner.push(w); outer.push(w);
  const st = model.trainingStatus('j');
  if (t >= nextInner) { nextInner += policy.innerPeriodMs;
    const out = policy.inner(state, { nowMs: t, services: [mergeWindows(inner)], trainings: [{ jobId: 'j', itersPerSec: 0, running: st.state === 'running' }], knobs });
    inner = []; if (out.knobs.mpsSharePct !== knobs.mpsSharePct) mps++; if (JSON.stringify(out.knobs.pacing) !== JSON.stringify(knobs.pacing)) sl++; apply(out.knobs); state = out.state; knobs = out.knobs; }
  if (t >= nextOuter) { nextOuter += policy.outerPeriodMs;
    const out = policy.outer(state, { nowMs: t, services: [mergeWindows(outer)], trainings: [{ jobId: 'j', itersPerSec: 0, running: st.state === 'running' }], knobs });
    outer = []; if (out.knobs.mpsSharePct !== knobs.mpsSharePct) mps++; apply(out.knobs); state = out.state; knobs = out.knobs; }
  if (t % (process.env.EVERY ? +process.env.EVERY : 5000) === 0) { const it = st.iterations; console.log(`t=${t/1000}s p99=${r.report.p99Ms.toFixed(1)} rate=${r.report.rateRps.toFixed(0)} duty=${knobs.pacing.mode==='duty'?knobs.pacing.duty.toFixed(2):knobs.pacing.sleepMs} mps=${knobs.mpsSharePct} it/s=${((it-lastIt)/((process.env.EVERY ? +process.env.EVERY : 5000)/1000)).toFixed(2)} att=${r.report.sloWindowsMet}/${r.report.sloWindows}`); lastIt = it; }
}
const st = model.trainingStatus('j');
console.log(`FINAL att=${ctx.seconds.windowsMet}/${ctx.seconds.windows} it/s=${(st.iterations/(D/1000)).toFixed(3)} mpsChanges=${mps} sleepChanges=${sl}`);
