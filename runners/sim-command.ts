import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FLEET_POLICIES, FORECAST_S, FleetDataError, fleetReportHtml, fleetTable, runFleet, savings, type FleetPolicy } from '../sim/index.ts';
import { UsageError, numberFlag } from './errors.ts';

export interface SimFleetFlags {
  days: string;
  policy: string;
  data?: string;
  seed: string;
  json?: boolean;
  report?: string;
  peakWindowH?: string;
}

const r4 = (x: number | undefined) => (x === undefined ? null : Number(x.toFixed(4)));

/** `gpucolo sim fleet`. */
export async function simFleetCommand(f: SimFleetFlags): Promise<void> {
  const days = numberFlag('--days', f.days, { integer: true, min: 1, max: 365 });
  const seed = numberFlag('--seed', f.seed, { integer: true, min: 0 });
  const peakWindowH = numberFlag('--peak-window-h', f.peakWindowH ?? '1', { min: 0.1, max: 24 * 14 });
  let policies: readonly FleetPolicy[];
  if (f.policy === 'all') policies = FLEET_POLICIES;
  else if ((FLEET_POLICIES as readonly string[]).includes(f.policy)) policies = [f.policy as FleetPolicy];
  else throw new UsageError(`--policy must be all or one of ${FLEET_POLICIES.join(', ')}, got ${JSON.stringify(f.policy)}`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const tty = process.stderr.isTTY === true;
  let lastPct = -1;
  const t0 = Date.now();
  const bar = (fraction: number, policy: FleetPolicy) => {
    const pct = Math.floor(fraction * 100);
    if (pct === lastPct) return;
    lastPct = pct;
    const filled = Math.round(fraction * 30);
    const text = `[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${String(pct).padStart(3)}% ${policy} ${((Date.now() - t0) / 1000).toFixed(0)} s`;
    if (tty) process.stderr.write(`\r${text}`);
    else if (pct % 10 === 0) log(text);
  };
  let run;
  try {
    run = runFleet({ dataDir: f.data, days, seed, policies, peakWindowS: peakWindowH * 3600, progress: bar });
  } catch (err) {
    if (err instanceof FleetDataError || err instanceof RangeError) throw new UsageError(`${(err as Error).message}`);
    throw err;
  }
  if (tty) process.stderr.write('\n');
  const { workload, results } = run;
  const out = f.json ? log : (line: string) => process.stdout.write(`${line}\n`);
  out(`Fleet simulation, ${days} days, seed ${seed}, gpucolo packs by the last ${peakWindowH} h peak and yesterday's next ${FORECAST_S / 3600} h: a COMPOSITE of real traces, not the paper's PAI v2020 job table (not public).`);
  for (const s of workload.sources) out(`  ${s}`);
  out(fleetTable(results));
  out('SLO violations: inference-service-steps (10 min) whose p99 on their GPU exceeds the 25 ms SLO (mean viol: whose MEAN latency does, the paper\'s measure); a service past one GPU\'s capacity at the SLO runs replicas (every policy); JCT: mean over jobs that arrived (unfinished: time so far).');
  const vsNo = savings(results, 'gpucolo', 'no-colocation');
  const vsG = savings(results, 'gpucolo', 'gslice');
  if (vsNo !== undefined) out(`gpucolo saves ${(100 * vsNo).toFixed(1)}% of GPUs against no-colocation${vsG !== undefined ? ` and ${(100 * vsG).toFixed(1)}% against gslice` : ''} (paper: 74.9% and 50.2%).`);
  out(`wall time ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (f.report) {
    mkdirSync(dirname(f.report), { recursive: true });
    writeFileSync(f.report, fleetReportHtml(`gpucolo fleet simulation: ${days} days, seed ${seed}`, [
      'A composite of real traces, not the paper\'s PAI v2020 job table.', ...workload.sources,
    ], results));
    log(`report: ${f.report}`);
  }
  if (f.json) {
    const pol: Record<string, unknown> = {};
    for (const r of results) {
      pol[r.policy] = {
        gpusDailyMean: r4(r.gpusMean), gpusPeak: r.gpusPeak, sloViolationRate: r4(r.sloViolationRate),
        sloViolationRateBurst: r4(r.sloViolationRateBurst), sloViolationRateBeyondAlone: r4(r.sloViolationRateBeyondAlone), sloViolationRateMeanLatency: r4(r.sloViolationRateMean), trainingJctMeanH: r4(r.trainingJctMeanH),
        gpusWithInferenceMean: r4(r.gpusWithInferenceMean), gpusTrainingOnlyMean: r4(r.gpusTrainingOnlyMean), replicasPerService: r4(r.replicasPerService),
        jobsFinished: r.jobsFinished, jobs: r.jobs, overflowGpus: r.overflowGpus, inferenceMoves: r.inferenceMoves,
      };
    }
    process.stdout.write(`${JSON.stringify({ days, seed, composite: true, policies: pol, savingsVsNoColocation: r4(vsNo), savingsVsGslice: r4(vsG) })}\n`);
  }
}
