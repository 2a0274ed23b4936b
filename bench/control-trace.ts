/**
 * One simulated GPU under one policy, without the bus: the demo's load (Poisson, a request-rate burst from 40%
 * to 65% of the run), run through bench/control/simulate.ts (the GPU actor's 200 ms windows and periods).
 * Prints a line every EVERY ms (default 5000) and a closing line: 1 s-window p99 attainment, training it/s,
 * knob changes.
 *
 *   node --import tsx bench/control-trace.ts [policy] [batch] [rateRps] [sloMs] [burst] [durationS] [seed]
 *   OPTS='{"marginPct":40}' node --import tsx bench/control-trace.ts gpucolo 2 150 25 1.5 120 1
 */
import { isPolicyName } from '../control/index.ts';
import { simulate, type Scenario } from './control/index.ts';

const [policyArg = 'gpucolo', batch = '2', rate = '150', slo = '25', burst = '1.5', durationArg = '120', seed = '1'] = process.argv.slice(2);
if (!isPolicyName(policyArg)) throw new Error(`unknown policy ${policyArg}`);
const rateRps = Number(rate);
const durationS = Number(durationArg);
const everyS = Number(process.env.EVERY ?? 5000) / 1000;
const b = Number(batch);
const s: Scenario = {
  name: 'control-trace', description: 'demo load', profile: 'rtx3090-resnet50-wrn101', sloMs: Number(slo), arrival: 'poisson', durationS,
  schedule: [{ tS: 0, rateRps, batch: b }, { tS: durationS * 0.4, rateRps: rateRps * Number(burst), batch: b }, { tS: durationS * 0.65, rateRps, batch: b }],
  loadMeanRps: rateRps, source: 'command line',
};
const r = simulate(s, policyArg, Number(seed), JSON.parse(process.env.OPTS ?? '{}'));
let met = 0;
let scored = 0;
for (const w of r.seconds) {
  if (w.count > 0) { scored++; if (w.p99Ms <= s.sloMs) met++; }
  if ((w.t + 1) % everyS === 0) {
    console.log(`t=${w.t + 1}s p99=${w.p99Ms.toFixed(1)}ms rate=${w.rateRps.toFixed(0)}rps sleep=${w.sleepDuty.toFixed(2)} mps=${w.mpsSharePct.toFixed(0)}% train=${w.itersPerSec.toFixed(2)}it/s attained=${met}/${scored}`);
  }
}
console.log(`FINAL att=${met}/${scored} it/s=${(r.iterations / r.durationS).toFixed(3)} mpsChanges=${r.mpsRestarts} sleepChanges=${r.sleepChanges}`);
