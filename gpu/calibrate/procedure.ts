import type { Pacing } from '../../control/index.ts';
import type { GpuDevice, GpuInfo } from '../index.ts';
import type { CalibrationPlan } from './plan.ts';

/**
 * What the procedure drives: a GpuDevice with one inference service and one training job, and a way to let
 * device time pass. The procedure sees the plant only through these calls (latencies of finished requests,
 * training iteration counts, the device clock), on a real GPU and on the simulated one alike.
 */
export interface Plant {
  device: GpuDevice;
  serviceId: string;
  jobId: string;
  /** Lets `ms` of device time pass (real: a timer; simulated: the clock moves). */
  sleep(ms: number): Promise<void>;
  /** False when the service's batch is fixed (a command without {batch}): the batch sweep measures one size. */
  batchSweep: boolean;
  /** The batch the service runs when batchSweep is false. */
  fixedBatch?: number;
  log?: (line: string) => void;
}

/** Offered load while measuring: a closed loop (next batch when the last returns) capped this high. */
export const LOAD_ON_RPS = 100_000;

export interface LatencyStats {
  count: number;
  meanMs: number;
  medianMs: number;
  p99Ms: number;
  /** Standard deviation of ln(latency): the lognormal sigma of the noise. */
  sigmaLog: number;
}

export interface AlonePoint extends LatencyStats { batch: number }
export interface ColocPoint extends LatencyStats { sharePct: number; duty: number; batch: number; samples: number[] }
export interface IterationPoint { sharePct: number; inference: boolean; iterMs: number; iterations: number }
export interface RestartPoint { sharePct: number; inference: boolean; first: boolean; totalMs: number }

export interface Measurements {
  device: Pick<GpuInfo, 'name' | 'memoryMiB' | 'backend'>;
  plan: CalibrationPlan;
  alone: AlonePoint[];
  noise: (LatencyStats & { batch: number; samples: number[] }) | undefined;
  coloc: ColocPoint[];
  iterations: IterationPoint[];
  restarts: RestartPoint[];
  /** Device time the procedure took, ms. */
  deviceMs: number;
  /** Steps not run because the budget was spent. */
  skipped: string[];
}

export class CalibrationError extends Error {
  override name = 'CalibrationError';
}

/** Mean, median, p99 and the log-sigma of latency samples. */
export function latencyStats(samples: number[]): LatencyStats {
  const n = samples.length;
  if (n === 0) return { count: 0, meanMs: NaN, medianMs: NaN, p99Ms: NaN, sigmaLog: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))]!;
  let sum = 0, logSum = 0;
  for (const x of samples) { sum += x; logSum += Math.log(x); }
  const logMean = logSum / n;
  let v = 0;
  for (const x of samples) v += (Math.log(x) - logMean) ** 2;
  const median = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { count: n, meanMs: sum / n, medianMs: median, p99Ms: q(0.99), sigmaLog: n > 1 ? Math.sqrt(v / (n - 1)) : 0 };
}

const noSleep = (p: CalibrationPlan): Pacing => ({ mode: 'duty', duty: 0, periodMs: p.dutyPeriodMs });

/**
 * Runs the calibration plan on a plant: inference alone against batch size, the latency noise, inference next to
 * awake training over shares x duties (training's iteration time next to inference and the restart time measured
 * on the way), then training alone at each share (its iteration time, and the restart time again). Returns what
 * was measured; `fitProfile` turns it into a profile.
 */
export async function runCalibration(plant: Plant, plan: CalibrationPlan): Promise<Measurements> {
  const { device: d, serviceId: svc, jobId: job } = plant;
  const log = plant.log ?? (() => {});
  const t0 = d.now();
  const m: Measurements = {
    device: { name: d.info.name, memoryMiB: d.info.memoryMiB, backend: d.info.backend },
    plan, alone: [], noise: undefined, coloc: [], iterations: [], restarts: [], deviceMs: 0, skipped: [],
  };
  const elapsed = () => d.now() - t0;
  const withinBudget = (step: string) => {
    if (elapsed() <= plan.budgetMs) return true;
    m.skipped.push(step);
    return false;
  };

  /** Latency samples of the next `ms`, after dropping what finished before. */
  const collect = async (ms: number): Promise<number[]> => {
    d.takeCompletions(svc);
    await plant.sleep(ms);
    return d.takeCompletions(svc).completions.map((c) => c.latencyMs);
  };

  /** Waits until the service answers again (a relaunch on a real GPU); what finished meanwhile is dropped. */
  const serviceReady = async (what: string) => {
    const end = d.now() + plan.restartTimeoutMs;
    d.takeCompletions(svc);
    for (;;) {
      await plant.sleep(plan.pollMs);
      if (d.takeCompletions(svc).completions.length > 0) return;
      if (d.now() > end) throw new CalibrationError(`inference (${svc}) answered no request within ${plan.restartTimeoutMs / 1000} s after ${what}: is its command a closed loop printing {"latencyMs": ...} lines?`);
    }
  };

  /**
   * Training's iteration time over at least `ms`: from the first to the last change of the iteration count seen
   * while polling, extended until three iterations are seen (or the restart timeout passes).
   */
  const iterationTime = async (ms: number, also?: { samples: number[] }): Promise<{ iterMs: number; iterations: number }> => {
    if (also) d.takeCompletions(svc);
    const start = d.now();
    let last = d.trainingStatus(job).iterations;
    let firstT = NaN, firstN = NaN, lastT = NaN, lastN = NaN;
    for (;;) {
      await plant.sleep(plan.pollMs);
      const now = d.now();
      const n = d.trainingStatus(job).iterations;
      if (n !== last) {
        if (Number.isNaN(firstT)) { firstT = now; firstN = n; }
        lastT = now; lastN = n; last = n;
      }
      const span = now - start;
      if (span >= ms && lastN - firstN >= 3) break;
      if (span >= ms + plan.restartTimeoutMs) {
        throw new CalibrationError(`training (${job}) made ${Number.isNaN(firstN) ? 0 : lastN - firstN + 1} iteration(s) in ${(span / 1000).toFixed(1)} s: too slow to time (or not reporting progress)`);
      }
    }
    if (also) also.samples = d.takeCompletions(svc).completions.map((c) => c.latencyMs);
    return { iterMs: (lastT - firstT) / (lastN - firstN), iterations: lastN - firstN };
  };

  /** A share change (or the first start): device time from the command to the first iteration that follows. */
  const restartTo = async (sharePct: number, first: boolean, inference: boolean): Promise<RestartPoint> => {
    d.setPacing(job, noSleep(plan));
    const tStart = d.now();
    d.setMpsShare(job, sharePct);
    if (first) d.setTrainingRunning(job, true);
    const end = tStart + plan.restartTimeoutMs;
    let base: number | undefined;
    for (;;) {
      await plant.sleep(plan.pollMs);
      const s = d.trainingStatus(job);
      if (base === undefined) {
        // The count settles once the new process is launched (the old one's last progress is read at its exit).
        if (s.state === 'running') base = s.iterations;
      } else if (s.iterations > base) {
        break;
      }
      if (d.now() > end) throw new CalibrationError(`training (${job}) made no iteration within ${plan.restartTimeoutMs / 1000} s after its MPS share was set to ${sharePct}%`);
    }
    const point = { sharePct, inference, first, totalMs: d.now() - tStart };
    log(`restart to ${sharePct}%${inference ? ' next to inference' : ''}: first iteration after ${(point.totalMs / 1000).toFixed(2)} s`);
    return point;
  };

  // 1. Inference alone against batch size (training stopped), then the noise at the grid's batch.
  d.setTrainingRunning(job, false);
  d.setPacing(job, noSleep(plan));
  const batches = plant.batchSweep ? plan.batches : [plant.fixedBatch ?? plan.batch];
  const gridBatch = plant.batchSweep ? plan.batch : (plant.fixedBatch ?? plan.batch);
  d.setBatch(svc, batches[0]!);
  d.setArrivalRate(svc, LOAD_ON_RPS);
  await serviceReady('start');
  for (const b of batches) {
    if (!withinBudget(`inference alone, batch ${b}`)) continue;
    d.setBatch(svc, b);
    if (plant.batchSweep) await serviceReady(`batch ${b}`);
    await plant.sleep(plan.settleMs);
    const s = latencyStats(await collect(plan.aloneWindowMs));
    if (s.count === 0) throw new CalibrationError(`inference (${svc}) finished no request at batch ${b} in ${plan.aloneWindowMs / 1000} s`);
    m.alone.push({ batch: b, ...s });
    log(`inference alone, batch ${b}: mean ${s.meanMs.toFixed(3)} ms over ${s.count} requests`);
  }
  if (withinBudget('latency noise')) {
    d.setBatch(svc, gridBatch);
    if (plant.batchSweep && batches[batches.length - 1] !== gridBatch) await serviceReady(`batch ${gridBatch}`);
    await plant.sleep(plan.settleMs);
    const samples = await collect(plan.noiseWindowMs);
    m.noise = { batch: gridBatch, ...latencyStats(samples), samples };
    log(`latency noise, batch ${gridBatch} alone: p99/mean ${(m.noise.p99Ms / m.noise.meanMs).toFixed(3)}, sigma(ln) ${m.noise.sigmaLog.toFixed(4)} over ${m.noise.count} requests`);
  }

  // 2. Next to inference: for each share a restart, then each duty (0 first: it also times training).
  let started = false;
  const duties = [0, ...plan.duties.filter((x) => x > 0)];
  for (const share of plan.shares) {
    if (!withinBudget(`co-located, share ${share}%`)) continue;
    m.restarts.push(await restartTo(share, !started, true));
    started = true;
    for (const duty of duties) {
      if (!withinBudget(`co-located, share ${share}%, duty ${duty}`)) continue;
      d.setPacing(job, { mode: 'duty', duty, periodMs: plan.dutyPeriodMs });
      await plant.sleep(plan.settleMs);
      let samples: number[];
      if (duty === 0) {
        const box = { samples: [] as number[] };
        const it = await iterationTime(plan.colocWindowMs, box);
        samples = box.samples;
        m.iterations.push({ sharePct: share, inference: true, ...it });
      } else {
        samples = await collect(plan.colocWindowMs);
      }
      const s = latencyStats(samples);
      if (s.count === 0) throw new CalibrationError(`inference (${svc}) finished no request next to training at share ${share}%, duty ${duty}`);
      m.coloc.push({ sharePct: share, duty, batch: gridBatch, ...s, samples });
      log(`next to training at ${share}%, duty ${duty}: mean ${s.meanMs.toFixed(3)} ms, median ${s.medianMs.toFixed(3)} ms over ${s.count} requests`);
    }
  }

  // 3. Training alone: inference stopped, a restart per share.
  d.setArrivalRate(svc, 0);
  await plant.sleep(plan.settleMs);
  for (const share of plan.shares) {
    if (!withinBudget(`training alone, share ${share}%`)) continue;
    m.restarts.push(await restartTo(share, !started, false));
    started = true;
    await plant.sleep(plan.settleMs);
    const it = await iterationTime(plan.iterWindowMs);
    m.iterations.push({ sharePct: share, inference: false, ...it });
    log(`training alone at ${share}%: ${it.iterMs.toFixed(2)} ms per iteration over ${it.iterations} iterations`);
  }
  d.setPacing(job, noSleep(plan));
  d.setTrainingRunning(job, false);
  m.deviceMs = elapsed();
  return m;
}
