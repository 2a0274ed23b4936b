/** One group of a fleet run on a worker thread (run.ts runFleetParallel): builds the workload, runs, posts back. */
import { parentPort, workerData } from 'node:worker_threads';
import { loadFleetData } from './data.ts';
import { runGroup, type FleetGroup, type RunFleetOptions } from './run.ts';
import { buildWorkload } from './workload.ts';

const { options: o, group } = workerData as { options: RunFleetOptions; group: FleetGroup };
const workload = buildWorkload(loadFleetData(o.dataDir), { days: o.days, seed: o.seed, scale: o.scale, peakWindowS: o.peakWindowS, forecastS: o.forecastS, serviceMemGiB: o.serviceMemGiB, jobMemGiBPerGpu: o.jobMemGiBPerGpu });
let last = -1;
const done = runGroup(workload, group, o, (f, what) => {
  const pct = Math.floor(f * 100);
  if (pct !== last) { last = pct; parentPort!.postMessage({ progress: [f, what] }); }
});
parentPort!.postMessage({ done });
