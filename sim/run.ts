/** Runs several policies over one workload and summarises them the way `gpucolo sim fleet` prints them. */
import { loadFleetData } from './data.ts';
import { simulateFleet, type FleetPolicy, type FleetResult } from './fleet.ts';
import { buildWorkload, type Workload } from './workload.ts';

export interface FleetRun {
  workload: Workload;
  results: FleetResult[];
}

/** Loads the data, builds the workload and runs each policy; progress(fraction, policy) as it goes. */
export function runFleet(o: { dataDir?: string; days: number; seed: number; scale?: number; peakWindowS?: number; forecastS?: number; serviceMemGiB?: number; jobMemGiBPerGpu?: number; policies: readonly FleetPolicy[]; progress?: (fraction: number, policy: FleetPolicy) => void }): FleetRun {
  const workload = buildWorkload(loadFleetData(o.dataDir), { days: o.days, seed: o.seed, scale: o.scale, peakWindowS: o.peakWindowS, forecastS: o.forecastS, serviceMemGiB: o.serviceMemGiB, jobMemGiBPerGpu: o.jobMemGiBPerGpu });
  const results = o.policies.map((p, i) => simulateFleet(workload, p, {
    onProgress: (f) => o.progress?.((i + f) / o.policies.length, p),
  }));
  return { workload, results };
}

/** 1 - gpus(policy) / gpus(reference), daily means; undefined when either is missing. */
export function savings(results: readonly FleetResult[], policy: FleetPolicy, reference: FleetPolicy): number | undefined {
  const a = results.find((r) => r.policy === policy), b = results.find((r) => r.policy === reference);
  if (!a || !b || b.gpusMean <= 0) return undefined;
  return 1 - a.gpusMean / b.gpusMean;
}

/** Fixed-width table of the results. */
export function fleetTable(results: readonly FleetResult[]): string {
  const pct = (x: number | undefined) => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);
  const head = ['policy', 'GPUs/day', 'peak GPUs', 'vs no-coloc', 'vs gslice', 'SLO viol', 'beyond alone', 'SLO viol burst', 'mean viol', 'train JCT h', 'jobs done'];
  const rows = results.map((r) => [
    r.policy, r.gpusMean.toFixed(0), String(r.gpusPeak), pct(savings(results, r.policy, 'no-colocation')), pct(savings(results, r.policy, 'gslice')),
    pct(r.sloViolationRate), pct(r.sloViolationRateBeyondAlone), pct(r.sloViolationRateBurst), pct(r.sloViolationRateMean), r.trainingJctMeanH.toFixed(2), `${r.jobsFinished}/${r.jobs}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
