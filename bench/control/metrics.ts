/**
 * Scores of one run: SLO attainment on p99 and on the mean over 1 s windows, p99/SLO at the median and
 * worst window, throughputs, MPS restarts and settling time after each load step.
 *
 * Every policy is scored the same way: the first `warmupS` seconds are scored for nobody (neither latency
 * nor training), so a policy's starting knobs and first decision period weigh the same for all. A second
 * in which requests waited but none finished counts as missed; a second with no request at all is not
 * scored.
 */
import { nearestRank } from '../../control/index.ts';
import { secondMissed, secondScored, type RunResult, type SecondRow } from './simulate.ts';

export interface PolicyScore {
  attainmentP99: number;
  attainmentMean: number;
  p99OverSloP50: number;
  p99OverSloMax: number;
  inferenceRps: number;
  trainingItersPerSec: number;
  mpsRestarts: number;
  /** MPS restarts per hour of the run. */
  mpsRestartsPerHour: number;
  /** Worst settling time over the load steps, s (0: no step, or never out of the SLO). */
  settleSecMax: number;
  /** Settling time after each step, s, in step order. */
  settleSec: number[];
  gpus: number;
  /** 1 s windows scored. */
  windows: number;
}

/** A window is settled once this many consecutive 1 s windows keep p99 within the SLO (fewer if the next step comes first). */
export const SETTLE_RUN = 10;

/** Seconds at the start of every run that are scored for no policy (the common warm-up). */
export const DEFAULT_WARMUP_S = 30;

const metMean = (w: SecondRow, slo: number) => (w.count > 0 ? w.meanMs <= slo : !w.waiting);

/**
 * Time from a load step until p99 stays within the SLO: the start of the first run of SETTLE_RUN compliant
 * 1 s windows after the step, minus the step's time. A window that inference alone (`reference`, the
 * no-colocation run on the same arrivals) also missed is not held against the policy: no co-location
 * decision could have met it.
 */
export function settleTimes(run: RunResult, steps: number[], reference?: RunResult): number[] {
  const w = run.seconds;
  const ok = (i: number) => !secondMissed(w[i]!, run.sloMs) || (reference?.seconds[i] !== undefined && secondMissed(reference.seconds[i]!, run.sloMs));
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

/** The seconds a run is scored on: from the warm-up on, with a request finished or waiting. */
export function scoredSeconds(run: RunResult, warmupS = DEFAULT_WARMUP_S): SecondRow[] {
  return run.seconds.filter((w) => w.t >= warmupS && secondScored(w));
}

/** p99 attainment of a run over its scored seconds (1 when none is scored). */
export function attainment(run: RunResult, warmupS = DEFAULT_WARMUP_S): number {
  const scored = scoredSeconds(run, warmupS);
  return scored.length > 0 ? scored.filter((w) => !secondMissed(w, run.sloMs)).length / scored.length : 1;
}

/** Training iterations per second after the warm-up. */
export function trainingRate(run: RunResult, warmupS = DEFAULT_WARMUP_S): number {
  const after = run.seconds.filter((w) => w.t >= warmupS);
  if (after.length === 0) return 0;
  let sum = 0;
  for (const w of after) sum += w.itersPerSec;
  return sum / after.length;
}

/**
 * Scores a run; `trainingAlone` replaces training throughput for a policy whose training runs on a GPU of
 * its own. Steps before the warm-up ends are not scored for settling.
 */
export function score(run: RunResult, steps: number[], reference?: RunResult, trainingAlone?: number, warmupS = DEFAULT_WARMUP_S): PolicyScore {
  const scored = scoredSeconds(run, warmupS);
  const n = scored.length;
  const ratios = scored.filter((w) => w.count > 0).map((w) => w.p99Ms / run.sloMs).sort((a, b) => a - b);
  const settle = settleTimes(run, steps.filter((t) => t >= warmupS), reference);
  const afterS = Math.max(0, run.durationS - warmupS);
  const hours = run.durationS / 3600;
  return {
    attainmentP99: attainment(run, warmupS),
    attainmentMean: n > 0 ? scored.filter((w) => metMean(w, run.sloMs)).length / n : 1,
    p99OverSloP50: nearestRank(ratios, 50),
    p99OverSloMax: ratios[ratios.length - 1] ?? 0,
    inferenceRps: afterS > 0 ? run.seconds.filter((w) => w.t >= warmupS).reduce((a, w) => a + w.count, 0) / afterS : 0,
    trainingItersPerSec: trainingAlone ?? trainingRate(run, warmupS),
    mpsRestarts: run.mpsRestarts,
    mpsRestartsPerHour: hours > 0 ? run.mpsRestarts / hours : 0,
    settleSecMax: settle.length > 0 ? Math.max(...settle) : 0,
    settleSec: settle,
    gpus: trainingAlone !== undefined ? 2 : run.gpus,
    windows: n,
  };
}
