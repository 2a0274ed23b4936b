import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FLEET_POLICIES, FORECAST_S, FleetDataError, MATCHED_BOUNDS, MOVE_STARTUP_S, SLOT_ORDERS, fairTable, fleetReportHtml, fleetTable, runFleetParallel, savings, savingsMatched, type FleetPolicy, type FleetResult, type SlotOrder } from '../sim/index.ts';
import { UsageError, numberFlag } from './errors.ts';

export interface SimFleetFlags {
  days: string;
  policy: string;
  data?: string;
  seed: string;
  json?: boolean;
  report?: string;
  peakWindowH?: string;
  /** fastest-first (default) or trace: which switched-off GPU a new workload powers on, for every policy. */
  slotOrder?: string;
  /** Start-up time of a moved replica, s (held on both GPUs meanwhile). */
  moveStartupS?: string;
  /** false (--no-matched): skip the baselines' matched-violation sweeps. */
  matched?: boolean;
  /** Worker threads (1: all in this thread; default 2: gpucolo's runs beside the others). */
  workers?: string;
}

const r4 = (x: number | undefined) => (x === undefined ? null : Number(x.toFixed(4)));
/** Savings to 6 decimals: a saving is compared against a target to the third decimal and must not round onto it. */
const r6 = (x: number | undefined) => (x === undefined ? null : Number(x.toFixed(6)));

/** `gpucolo sim fleet`. */
export async function simFleetCommand(f: SimFleetFlags): Promise<void> {
  const days = numberFlag('--days', f.days, { integer: true, min: 1, max: 365 });
  const seed = numberFlag('--seed', f.seed, { integer: true, min: 0 });
  const peakWindowH = numberFlag('--peak-window-h', f.peakWindowH ?? '1', { min: 0.1, max: 24 * 14 });
  const slotOrder = (f.slotOrder ?? 'fastest-first') as SlotOrder;
  if (!(SLOT_ORDERS as readonly string[]).includes(slotOrder)) throw new UsageError(`--slot-order must be one of ${SLOT_ORDERS.join(', ')} (the same for every policy), got ${JSON.stringify(f.slotOrder)}`);
  const workers = numberFlag('--workers', f.workers ?? '2', { integer: true, min: 1, max: 2 });
  const moveStartupS = numberFlag('--move-startup-s', f.moveStartupS ?? String(MOVE_STARTUP_S), { min: 0, max: 600 });
  let policies: readonly FleetPolicy[];
  if (f.policy === 'all') policies = FLEET_POLICIES;
  else if ((FLEET_POLICIES as readonly string[]).includes(f.policy)) policies = [f.policy as FleetPolicy];
  else throw new UsageError(`--policy must be all or one of ${FLEET_POLICIES.join(', ')}, got ${JSON.stringify(f.policy)}`);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const tty = process.stderr.isTTY === true;
  let lastPct = -1;
  const t0 = Date.now();
  const bar = (fraction: number, policy: string) => {
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
    run = await runFleetParallel({ workers, dataDir: f.data, days, seed, policies, peakWindowS: peakWindowH * 3600, slotOrder, moveStartupS, matched: f.matched !== false, progress: bar });
  } catch (err) {
    if (err instanceof FleetDataError || err instanceof RangeError) throw new UsageError(`${(err as Error).message}`);
    throw err;
  }
  if (tty) process.stderr.write('\n');
  const { workload, results } = run;
  const out = f.json ? log : (line: string) => process.stdout.write(`${line}\n`);
  out(`Fleet simulation, ${days} days, seed ${seed}, gpucolo packs by the last ${peakWindowH} h peak and yesterday's next ${FORECAST_S / 3600} h: a COMPOSITE of real traces, not the paper's PAI v2020 job table (not public).`);
  for (const s of workload.sources) out(`  ${s}`);
  out(`The fair table: every policy powers on GPUs ${slotOrder === 'fastest-first' ? 'fastest type first' : 'in the trace\'s slot order'}; gpucolo's replica moves are charged ${moveStartupS} s on both GPUs each; each baseline also at the fewest GPUs at which its violations stay within ${MATCHED_BOUNDS.map((b) => `${(100 * b).toFixed(1)}%`).join(' and ')} (its packing line swept: gslice the fraction of the SLO it fills to, gpucolo-paper its utilisation cap).`);
  out(fairTable(run));
  out('Every column, each policy at its own packing line:');
  out(fleetTable(results));
  out('SLO violations: inference-service-steps (10 min) whose p99 on their GPU exceeds the 25 ms SLO (mean viol: whose MEAN latency does, the paper\'s measure); a service past one GPU\'s capacity at the SLO runs replicas (every policy); JCT: mean over jobs that arrived (unfinished: time so far).');
  const vsNo = savings(results, 'gpucolo', 'no-colocation');
  const vsG = savings(results, 'gpucolo', 'gslice');
  const vsGm = savingsMatched(run, 'gpucolo', 'gslice', MATCHED_BOUNDS[0]);
  if (vsNo !== undefined) out(`gpucolo saves ${(100 * vsNo).toFixed(1)}% of GPUs against no-colocation${vsGm !== undefined ? `, ${(100 * vsGm).toFixed(1)}% against gslice at <= ${(100 * MATCHED_BOUNDS[0]).toFixed(1)}% violations` : ''}${vsG !== undefined ? ` (${(100 * vsG).toFixed(1)}% against gslice at its own line, which breaks the SLO far more often)` : ''}; paper: 74.9% and 50.2%.`);
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
        slotOrder: r.slotOrder, packLine: r.packLine,
        gpusDailyMean: r4(r.gpusMean), gpusPeak: r.gpusPeak, sloViolationRate: r4(r.sloViolationRate),
        sloViolationRateBurst: r4(r.sloViolationRateBurst), sloViolationRateBeyondAlone: r4(r.sloViolationRateBeyondAlone), sloViolationRateMeanLatency: r4(r.sloViolationRateMean), trainingJctMeanH: r4(r.trainingJctMeanH),
        gpusWithInferenceMean: r4(r.gpusWithInferenceMean), gpusTrainingOnlyMean: r4(r.gpusTrainingOnlyMean), replicasPerService: r4(r.replicasPerService),
        jobsFinished: r.jobsFinished, jobs: r.jobs, overflowGpus: r.overflowGpus,
        inferenceMoves: r.inferenceMoves, inferenceMovesPerServiceDay: r4(r.inferenceMovesPerServiceDay), inferenceMovesMaxPerServiceDay: r.inferenceMovesMaxPerServiceDay, moveStartupS: r.moveStartupS, gpusHeldByMovesMean: r4(r.gpusHeldByMovesMean),
      };
    }
    const point = (r: FleetResult, packLine: number | null) => ({ gpusDailyMean: r4(r.gpusMean), sloViolationRate: r4(r.sloViolationRate), packLine, trainingJctMeanH: r4(r.trainingJctMeanH), slotOrder: r.slotOrder });
    const matched: Record<string, Record<string, unknown>> = {};
    for (const bound of MATCHED_BOUNDS) {
      const m: Record<string, unknown> = {};
      for (const sw of run.matched) { const b = sw.best[String(bound)]; m[sw.policy] = b ? point(b.result, b.packLine) : null; }
      matched[String(bound)] = m;
    }
    const sweeps = Object.fromEntries(run.matched.map((sw) => [sw.policy, sw.runs.map((p) => point(p.result, p.packLine))]));
    process.stdout.write(`${JSON.stringify({
      days, seed, composite: true, slotOrder, moveStartupS, policies: pol, matched, matchedSweeps: sweeps,
      savingsVsNoColocation: r6(vsNo), savingsVsGslice: r6(vsG), savingsVsGsliceMatched: r6(vsGm),
      savingsVsGsliceMatched0001: r6(savingsMatched(run, 'gpucolo', 'gslice', MATCHED_BOUNDS[1])),
      savingsVsPaperMatched: r6(savingsMatched(run, 'gpucolo', 'gpucolo-paper', MATCHED_BOUNDS[0])),
      wallS: Number(((Date.now() - t0) / 1000).toFixed(1)),
    })}\n`);
  }
}
