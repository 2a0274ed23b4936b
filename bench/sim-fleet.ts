/**
 * Speed of the fleet simulation: every policy and the baselines' matched-violation sweeps per run (as
 * `gpucolo sim fleet --policy all`, on two worker threads), each run in its own process so its peak memory
 * (max RSS) is its own. Prints one row per (days, fleet scale) with wall time and peak memory.
 *
 *   node --import tsx bench/sim-fleet.ts [--days 7,14,28,57] [--scales 1,4] [--seed 1]
 *
 * The trade-off of gpucolo's packing (one row per setting, gpucolo only, against no-colocation and gslice of
 * the same workload and slot order, gslice also at its fewest GPUs within 1.1% violations): training's speed
 * floor, move start-up, slot order (every policy), history window, claim-back horizon, packing line and the
 * (invented) memory figures:
 *
 *   node --import tsx bench/sim-fleet.ts --sweep [--days 57] [--seed 1] [--only 0,3]   (--only: rows by index)
 *
 * A child run (internal): node --import tsx bench/sim-fleet.ts --child DAYS SCALE SEED
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { FLEET_POLICIES, FORECAST_S, runFleetParallel, savings, savingsMatched, simulateFleet, buildWorkload, loadFleetData, matchedSweep } from '../sim/index.ts';
import type { SimulateOptions } from '../sim/index.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};

if (args[0] === '--child') {
  const [days, scale, seed] = args.slice(1, 4).map(Number);
  const t0 = process.hrtime.bigint();
  const run = await runFleetParallel({ days: days!, scale: scale!, seed: seed!, policies: FLEET_POLICIES });
  const { workload, results } = run;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  const gpucolo = results.find((r) => r.policy === 'gpucolo')!;
  process.stdout.write(`${JSON.stringify({
    days, scale, wallS, maxRssMiB, services: workload.services.app.length, jobs: workload.trainings.arrival.length,
    gpusNoColocation: results.find((r) => r.policy === 'no-colocation')!.gpusMean,
    gpusGpucolo: gpucolo.gpusMean, savingsVsNoColocation: savings(results, 'gpucolo', 'no-colocation'), savingsVsGslice: savings(results, 'gpucolo', 'gslice'), savingsVsGsliceMatched: savingsMatched(run, 'gpucolo', 'gslice', 0.011),
    perPolicyS: Object.fromEntries(results.map((r) => [r.policy, r.wallMs / 1000])),
  })}\n`);
} else if (args[0] === '--sweep') {
  const days = Number(flag('--days', '57')), seed = Number(flag('--seed', '1'));
  const data = loadFleetData();
  type Setting = { label: string; peakWindowS?: number; forecastS?: number; serviceMemGiB?: number; jobMemGiBPerGpu?: number; sim?: SimulateOptions };
  const only = flag('--only', '');
  const all: Setting[] = [
    { label: 'default: packing 0.95 / relief 0.98 of the SLO, window 1 h, claim-back 2 h, training >= 30% speed, move start-up 60 s' },
    { label: 'training >= 50% speed', sim: { trainingMinSpeed: 0.5 } },
    { label: 'training >= 20% speed', sim: { trainingMinSpeed: 0.2 } },
    { label: 'move start-up 0 s (moves free)', sim: { moveStartupS: 0 } },
    { label: 'move start-up 300 s', sim: { moveStartupS: 300 } },
    { label: 'packing line 0.9, relief 0.95 of the SLO', sim: { packLine: 0.9, reliefSloFraction: 0.95 } },
    { label: 'packing line 0.8, relief 0.9 of the SLO', sim: { packLine: 0.8, reliefSloFraction: 0.9 } },
    { label: 'packing line 0.7, relief 0.85 of the SLO', sim: { packLine: 0.7, reliefSloFraction: 0.85 } },
    { label: 'window 24 h', peakWindowS: 86400 },
    { label: 'memory halved', serviceMemGiB: 1, jobMemGiBPerGpu: 8 },
    { label: 'slots in trace order (baselines too)', sim: { slotOrder: 'trace' } },
  ];
  const settings = only ? all.filter((_, i) => only.split(',').map(Number).includes(i)) : all;
  const base = buildWorkload(data, { days, seed });
  const refs = new Map<string, { none: ReturnType<typeof simulateFleet>; gslice: ReturnType<typeof simulateFleet>; matched: ReturnType<typeof simulateFleet> | undefined }>();
  const ref = (order: 'fastest-first' | 'trace') => {
    let r = refs.get(order);
    if (!r) {
      const none = simulateFleet(base, 'no-colocation', { slotOrder: order }), gslice = simulateFleet(base, 'gslice', { slotOrder: order });
      const m = matchedSweep(base, 'gslice', { slotOrder: order }, gslice).best['0.011'];
      r = { none, gslice, matched: m?.result };
      refs.set(order, r);
      console.log(`${order}: no-colocation ${none.gpusMean.toFixed(0)} GPUs/day (JCT ${none.trainingJctMeanH.toFixed(2)} h); gslice ${gslice.gpusMean.toFixed(0)} at ${(100 * gslice.sloViolationRate).toFixed(1)}% violations; gslice within 1.1%: ${m ? `${m.result.gpusMean.toFixed(0)} at line ${m.packLine} (${(100 * m.result.sloViolationRate).toFixed(2)}%)` : 'none'}`);
    }
    return r;
  };
  ref('fastest-first');
  const head = ['setting', 'GPUs/day', 'peak', 'vs no-coloc', 'vs gslice', 'vs gslice <= 1.1%', 'SLO viol', 'JCT h', 'JCT vs no-coloc', 'moves/svc/day', 'GPUs w/ inference', 'training-only GPUs', 'wall s'];
  console.log(head.join(' | '));
  console.log(head.map(() => '---').join(' | '));
  for (const st of settings) {
    const w = st.peakWindowS === undefined && st.forecastS === undefined && st.serviceMemGiB === undefined ? base
      : buildWorkload(data, { days, seed, peakWindowS: st.peakWindowS ?? 3600, forecastS: st.forecastS ?? FORECAST_S, serviceMemGiB: st.serviceMemGiB, jobMemGiBPerGpu: st.jobMemGiBPerGpu });
    const r = simulateFleet(w, 'gpucolo', st.sim ?? {});
    const { none, gslice, matched } = ref(st.sim?.slotOrder ?? 'fastest-first');
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log([st.label, r.gpusMean.toFixed(0), Math.round(r.gpusPeak), pct(1 - r.gpusMean / none.gpusMean), pct(1 - r.gpusMean / gslice.gpusMean), matched ? pct(1 - r.gpusMean / matched.gpusMean) : '-', `${(100 * r.sloViolationRate).toFixed(2)}%`,
      r.trainingJctMeanH.toFixed(2), `${(100 * (r.trainingJctMeanH / none.trainingJctMeanH - 1)).toFixed(1)}%`, r.inferenceMovesPerServiceDay.toFixed(2), r.gpusWithInferenceMean.toFixed(0), r.gpusTrainingOnlyMean.toFixed(0), (r.wallMs / 1000).toFixed(1)].join(' | '));
  }
} else {
  const daysList = flag('--days', '7,14,28,57').split(',').map(Number);
  const scales = flag('--scales', '1,4').split(',').map(Number);
  const seed = Number(flag('--seed', '1'));
  const self = fileURLToPath(import.meta.url);
  console.log(`fleet simulation speed: all ${FLEET_POLICIES.length} policies per row, seed ${seed}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`);
  const head = ['days', 'fleet', 'services', 'jobs', 'GPUs no-coloc', 'GPUs gpucolo', 'vs gslice <= 1.1%', 'wall s', 'peak MiB', 'slowest policy'];
  console.log(head.join(' | '));
  console.log(head.map(() => '---').join(' | '));
  for (const scale of scales) {
    for (const days of daysList) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', String(days), String(scale), String(seed)], { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (r.status !== 0) { console.log(`${days} | ${scale}x | failed: ${r.stderr.trim().split('\n').at(-1)}`); continue; }
      const o = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
      const slow = Object.entries(o.perPolicyS as Record<string, number>).sort((a, b) => b[1] - a[1])[0]!;
      console.log([days, `${scale}x`, o.services, o.jobs, o.gpusNoColocation.toFixed(0), o.gpusGpucolo.toFixed(0), o.savingsVsGsliceMatched === null || o.savingsVsGsliceMatched === undefined ? '-' : `${(100 * o.savingsVsGsliceMatched).toFixed(1)}%`, o.wallS.toFixed(1), o.maxRssMiB.toFixed(0), `${slow[0]} ${slow[1].toFixed(1)} s`].join(' | '));
    }
  }
}
