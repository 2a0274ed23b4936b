/**
 * Where each policy's control law settles one GPU under a load held for a step (10 minutes).
 *   gpucolo, gpucolo-paper - the law itself: control/'s policy of that name (createPolicy, the code the host
 *                   runner ships) run in closed loop on gpu/model's per-request simulation (closed-loop.ts):
 *                   CL_WARMUP_S of warm-up, then CL_MEASURE_S measured; the p99 and mean of the requests
 *                   finished in the measured stretch and the training progress over it, relative to alone.
 *                   One run per cell of a coarse grid (load rounded UP to CL_RHO_GRID, total training demand
 *                   rounded UP to CL_DEMAND_GRID), shared by every run in the process. A GPU whose inference
 *                   alone is past OVERLOAD_RHO busy is overloaded whatever the law does: alone's fluid
 *                   latency, no training progress.
 *   alone         - inference with no training on its GPU (no-colocation, gslice): the fluid physics (physics.ts).
 * Results are memoised on (GPU type, training demand, load) with the load rounded UP to a grid, so a cached
 * answer is never more optimistic than the exact one.
 */
import type { PolicyName } from '../control/index.ts';
import { serviceMs, type GpuProfile } from '../gpu/model/index.ts';
import { closedLoop, type ClosedLoopCase } from './closed-loop.ts';
import { fluidGpu, type FluidPacing } from './physics.ts';

export type SettleLaw = 'gpucolo' | 'gpucolo-paper' | 'alone';

export interface Settled {
  p99Ms: number;
  /** Mean inference latency, ms (what the paper's law holds at its reference). */
  meanMs: number;
  /** Training speed relative to alone on this GPU (same for every job on it). */
  trainingSpeed: number;
}

export const RHO_GRID = 0.0025;
export const DEMAND_GRID = 0.05;
/** Memo table: demand 0..1 in DEMAND_GRID steps, load 0..RHO_SLOTS x RHO_GRID (beyond: the last slot, overloaded anyway). */
const DEMAND_SLOTS = 21;
const RHO_SLOTS = 4096;

export interface SettleContext {
  profile: GpuProfile;
  sloMs: number;
  batch: number;
}

/** A memoising settler for one law. */
export class Settler {
  private table = new Float64Array(3 * DEMAND_SLOTS * RHO_SLOTS).fill(NaN);
  evaluations = 0;

  constructor(readonly law: SettleLaw, readonly ctx: SettleContext, readonly speeds: readonly number[]) {}

  /** Settled state of a GPU of type `type` with inference load `rho` (busy fraction alone) and training demand. */
  settle(type: number, rho: number, trainingDemand: number): Settled {
    const i = this.index(type, rho, trainingDemand);
    return { p99Ms: this.table[i]!, trainingSpeed: this.table[i + 1]!, meanMs: this.table[i + 2]! };
  }

  /** The settled p99 alone (no training): the hot path of the violation count, without an object. */
  p99(type: number, rho: number, trainingDemand: number): number {
    return this.table[this.index(type, rho, trainingDemand)]!;
  }

  /** Slot of (type, demand, load) in the memo table (p99, speed, mean), computing it on first use. */
  private index(type: number, rho: number, trainingDemand: number): number {
    const dq = trainingDemand > 0 ? Math.min(DEMAND_SLOTS - 1, Math.max(1, Math.ceil(trainingDemand / DEMAND_GRID - 1e-9))) : 0;
    const rq = Math.min(RHO_SLOTS - 1, Math.ceil(rho / RHO_GRID - 1e-9));
    const i = 3 * ((type * DEMAND_SLOTS + dq) * RHO_SLOTS + rq);
    if (i + 2 >= this.table.length) {
      const t = new Float64Array(Math.max(i + 3, 2 * this.table.length)).fill(NaN);
      t.set(this.table);
      this.table = t;
    }
    if (Number.isNaN(this.table[i]!)) {
      const r = this.compute(type, rq * RHO_GRID, dq * DEMAND_GRID);
      this.table[i] = r.p99Ms; this.table[i + 1] = r.trainingSpeed; this.table[i + 2] = r.meanMs;
    }
    return i;
  }

  /** Largest load that meets `targetMs` alone on a GPU type (what SLO-aware inference packing may fill to). */
  aloneCapacity(type: number, targetMs: number): number {
    let lo = 0, hi = 1;
    for (let i = 0; i < 30; i++) {
      const mid = (lo + hi) / 2;
      if (this.eval(type, mid, 0, 1, { mode: 'duty', duty: 1, periodMs: 50 }).p99 <= targetMs) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  private eval(type: number, rho: number, demand: number, scale: number, pacing: FluidPacing): { p99: number; mean: number; speed: number } {
    this.evaluations++;
    const speed = this.speeds[type]!;
    const trainings = demand > 0 && !(pacing.mode === 'duty' && pacing.duty >= 1)
      ? [{ sharePct: Math.max(1, Math.min(100, scale * 100 * demand)), demand }]
      : [];
    const r = fluidGpu({ profile: this.ctx.profile, rho, serviceMs: serviceMs(this.ctx.profile, this.ctx.batch) / speed, trainings, pacing });
    return { p99: r.p99Ms, mean: r.meanMs, speed: r.trainingSpeed[0] ?? 0 };
  }

  private compute(type: number, rho: number, demand: number): Settled {
    const alone = this.eval(type, rho, 0, 1, { mode: 'duty', duty: 1, periodMs: 50 });
    if (this.law === 'alone' || demand === 0) return { p99Ms: alone.p99, meanMs: alone.mean, trainingSpeed: 0 };
    if (!(rho < OVERLOAD_RHO) || !Number.isFinite(alone.p99)) return { p99Ms: alone.p99, meanMs: alone.mean, trainingSpeed: 0 };
    return closedLoopCell(this.law, this.ctx, this.speeds[type]!, rho, demand);
  }
}

/** Closed-loop grid (see the file comment). */
export const CL_RHO_GRID = 0.05;
export const CL_DEMAND_GRID = 0.1;
export const CL_WARMUP_S = 120;
export const CL_MEASURE_S = 120;
/** Inference busy fraction alone past which a GPU counts as overloaded (no closed-loop run). */
export const OVERLOAD_RHO = 0.95;

const cells = new Map<string, Settled>();
/** Closed-loop runs so far in this process (every cell once). */
export const closedLoopStats = { runs: 0, ms: 0 };

/** The closed-loop run behind the settled state of (law, GPU speed, load, demand): the grid cell the point rounds UP to. */
export function closedLoopCase(law: Exclude<SettleLaw, 'alone'>, ctx: SettleContext, speed: number, rho: number, demand: number): ClosedLoopCase {
  const rq = Math.ceil(rho / CL_RHO_GRID - 1e-9), dq = Math.max(1, Math.ceil(Math.min(1, demand) / CL_DEMAND_GRID - 1e-9));
  return {
    profile: ctx.profile, policy: law as PolicyName, sloMs: ctx.sloMs, batch: ctx.batch, speed,
    rho: Math.min(OVERLOAD_RHO, rq * CL_RHO_GRID), demand: Math.min(1, dq * CL_DEMAND_GRID),
    seed: 1 + rq * 131 + dq * 7919 + Math.round(speed * 1000) * 31, warmupS: CL_WARMUP_S, measureS: CL_MEASURE_S,
  };
}

function closedLoopCell(law: Exclude<SettleLaw, 'alone'>, ctx: SettleContext, speed: number, rho: number, demand: number): Settled {
  const c = closedLoopCase(law, ctx, speed, rho, demand);
  const key = `${law}|${ctx.profile.name}|${ctx.sloMs}|${ctx.batch}|${speed}|${c.rho}|${c.demand}`;
  let v = cells.get(key);
  if (v === undefined) {
    const t0 = Date.now();
    const r = closedLoop(c);
    closedLoopStats.runs++;
    closedLoopStats.ms += Date.now() - t0;
    v = { p99Ms: r.p99Ms, meanMs: r.meanMs, trainingSpeed: r.trainingSpeed };
    cells.set(key, v);
  }
  return v;
}
