/**
 * Scores of one run: SLO attainment on p99 and on the mean over 1 s windows, p99/SLO at the median and
 * worst window, throughputs, MPS restarts and settling time after each load step.
 */
import { nearestRank } from '../../control/index.ts';
import type { RunResult, SecondRow } from './simulate.ts';

export interface PolicyScore {
  attainmentP99: number;
  attainmentMean: number;
  p99OverSloP50: number;
  p99OverSloMax: number;
  inferenceRps: number;
  trainingItersPerSec: number;
  mpsRestarts: number;
  /** Worst settling time over the load steps, s (0: no step, or never out of the SLO). */
  settleSecMax: number;
  /** Settling time after each step, s, in step order. */
  settleSec: number[];
  gpus: number;
  /** 1 s windows scored (windows with no finished request are not scored). */
  windows: number;
}

/** A window is settled once this many consecutive 1 s windows keep p99 within the SLO (fewer if the next step comes first). */
export const SETTLE_RUN = 10;

const met = (w: SecondRow, slo: number, metric: 'p99Ms' | 'meanMs') => w.count === 0 || w[metric] <= slo;

/**
 * Time from a load step until p99 stays within the SLO: the start of the first run of SETTLE_RUN compliant
 * 1 s windows after the step, minus the step's time. A window that inference alone (`reference`, the
 * no-colocation run on the same arrivals) also missed is not held against the policy: no co-location
 * decision could have met it.
 */
export function settleTimes(run: RunResult, steps: number[], reference?: RunResult): number[] {
  const w = run.seconds;
  const ok = (i: number) => met(w[i]!, run.sloMs, 'p99Ms') || (reference !== undefined && reference.seconds[i] !== undefined && !met(reference.seconds[i]!, run.sloMs, 'p99Ms'));
  return steps.map((t0, k) => {
    const t1 = Math.min(steps[k + 1] ?? run.durationS, run.durationS);
    const first = Math.floor(t0);
    const last = Math.ceil(t1) - 1;
    if (first > last || first >= w.length) return 0;
    for (let j = first; j <= last; j++) {
      const runEnd = Math.min(last, j + SETTLE_RUN - 1);
      let all = true;
      for (let i = j; i <= runEnd && i < w.length; i++) if (!ok(i)) { all = false; break; }
      if (all) return Math.max(0, j - t0);
    }
    return t1 - t0;
  });
}

/** Scores a run; `trainingAlone` replaces training throughput for a policy whose training runs on a GPU of its own. */
export function score(run: RunResult, steps: number[], reference?: RunResult, trainingAlone?: number): PolicyScore {
  const scored = run.seconds.filter((w) => w.count > 0);
  const n = scored.length;
  const ratios = scored.map((w) => w.p99Ms / run.sloMs).sort((a, b) => a - b);
  const settle = settleTimes(run, steps, reference);
  return {
    attainmentP99: n > 0 ? scored.filter((w) => w.p99Ms <= run.sloMs).length / n : 1,
    attainmentMean: n > 0 ? scored.filter((w) => w.meanMs <= run.sloMs).length / n : 1,
    p99OverSloP50: nearestRank(ratios, 50),
    p99OverSloMax: ratios[ratios.length - 1] ?? 0,
    inferenceRps: run.completions / run.durationS,
    trainingItersPerSec: trainingAlone ?? run.iterations / run.durationS,
    mpsRestarts: run.mpsRestarts,
    settleSecMax: settle.length > 0 ? Math.max(...settle) : 0,
    settleSec: settle,
    gpus: trainingAlone !== undefined ? 2 : run.gpus,
    windows: n,
  };
}
