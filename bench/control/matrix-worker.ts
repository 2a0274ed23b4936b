/** Worker thread of the control matrix: runs the cells it is sent and posts their results back. */
import { parentPort } from 'node:worker_threads';
import { runCell } from './cell.ts';
import type { CellJob } from './matrix.ts';

parentPort!.on('message', (job: CellJob) => {
  try {
    const r = runCell(job.scenario, job.policies, job.seed, job.warmupS, undefined, false);
    parentPort!.postMessage({ id: job.id, result: r });
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).stack ?? String(err) });
  }
});
