/**
 * Where each policy's control laws settle one GPU under a load held for a step. The laws in control/ are
 * integral controllers (zero steady-state error) running every 0.2-4 s; a fleet step is 10 minutes, so the
 * simulator takes their fixed point instead of stepping them: the knob values at which the law's controlled
 * metric sits on the law's own target (its options' defaults), or the knob bound where it saturates.
 *   gpucolo       - p99 held at SLO * (1 - marginPct/100) by the sleep duty (duty period dutyPeriodMs); the
 *                   outer tier's model mode moves the MPS share to where training trains most (GPUCOLO_DEFAULTS).
 *   gpucolo-paper - MEAN latency held at the SLO by the per-iteration sleep (0..maxSleepMs); the outer loop
 *                   lowers the share only when the sleep is saturated, raises it when there is slack (PAPER_DEFAULTS).
 *   alone         - inference with no training on its GPU (no-colocation, separate, gslice).
 * Results are memoised on (GPU type, training demand, load) with the load rounded UP to a grid, so a cached
 * answer is never more optimistic than the exact one.
 */
import { GPUCOLO_DEFAULTS, PAPER_DEFAULTS } from '../control/index.ts';
import { serviceMs, type GpuProfile } from '../gpu/model/index.ts';
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
const SHARE_SCALES = [1, 0.6, 0.35, 0.2];

export interface SettleContext {
  profile: GpuProfile;
  sloMs: number;
  batch: number;
}

/** A memoising settler for one law. */
export class Settler {
  private table = new Float64Array(3 * DEMAND_SLOTS * RHO_SLOTS).fill(NaN);
  private readonly o = GPUCOLO_DEFAULTS;
  private readonly paper = PAPER_DEFAULTS;
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
      ? [{ sharePct: Math.max(this.o.minSharePct, Math.min(100, scale * 100 * demand)), demand }]
      : [];
    const r = fluidGpu({ profile: this.ctx.profile, rho, serviceMs: serviceMs(this.ctx.profile, this.ctx.batch) / speed, trainings, pacing });
    return { p99: r.p99Ms, mean: r.meanMs, speed: r.trainingSpeed[0] ?? 0 };
  }

  private compute(type: number, rho: number, demand: number): Settled {
    const alone = this.eval(type, rho, 0, 1, { mode: 'duty', duty: 1, periodMs: 50 });
    if (this.law === 'alone' || demand === 0) return { p99Ms: alone.p99, meanMs: alone.mean, trainingSpeed: 0 };
    if (this.law === 'gpucolo') return this.gpucolo(type, rho, demand, alone);
    return this.paperLaw(type, rho, demand);
  }

  private gpucolo(type: number, rho: number, demand: number, alone: { p99: number; mean: number }): Settled {
    const aloneP99 = alone.p99;
    const o = this.o;
    const target = this.ctx.sloMs * (1 - o.marginPct / 100);
    const duty = (d: number): FluidPacing => ({ mode: 'duty', duty: d, periodMs: o.dutyPeriodMs });
    let best: Settled = { p99Ms: aloneP99, meanMs: alone.mean, trainingSpeed: 0 };
    for (const k of SHARE_SCALES) {
      const free = this.eval(type, rho, demand, k, duty(0));
      let p99 = free.p99, mean = free.mean, speed = free.speed;
      if (free.p99 > target) {
        // The inner tier raises the duty until the tail is back on target (bisection on its fixed point).
        let lo = 0, hi = o.maxDuty;
        let at = { p99: aloneP99, mean: alone.mean, speed: 0 };
        for (let i = 0; i < 8; i++) {
          const mid = (lo + hi) / 2;
          const r = this.eval(type, rho, demand, k, duty(mid));
          if (r.p99 <= target) { hi = mid; at = r; } else lo = mid;
        }
        if (hi >= o.maxDuty) at = { p99: aloneP99, mean: alone.mean, speed: 0 };
        p99 = at.p99;
        mean = at.mean;
        speed = at.speed;
      }
      if (speed > best.trainingSpeed * (1 + o.minGainPct / 100) || best.trainingSpeed === 0 && speed > 0) best = { p99Ms: p99, meanMs: mean, trainingSpeed: speed };
    }
    return best;
  }

  private paperLaw(type: number, rho: number, demand: number): Settled {
    const o = this.paper;
    const lref = this.ctx.sloMs * (1 - o.marginPct / 100);
    const sleep = (s: number): FluidPacing => ({ mode: 'per-iteration', sleepMs: s });
    // The outer loop raises the share while the sleep sits at 0 with slack, lowers it while the sleep is
    // saturated and the mean still above Lref: settle at the largest share whose range contains Lref.
    for (const k of SHARE_SCALES) {
      const free = this.eval(type, rho, demand, k, sleep(0));
      if (free.mean <= lref) return { p99Ms: free.p99, meanMs: free.mean, trainingSpeed: free.speed };
      const held = this.eval(type, rho, demand, k, sleep(o.maxSleepMs));
      if (held.mean > lref) continue;
      let lo = 0, hi = o.maxSleepMs, at = held;
      for (let i = 0; i < 10; i++) {
        const mid = (lo + hi) / 2;
        const r = this.eval(type, rho, demand, k, sleep(mid));
        if (r.mean <= lref) { hi = mid; at = r; } else lo = mid;
      }
      return { p99Ms: at.p99, meanMs: at.mean, trainingSpeed: at.speed };
    }
    const last = this.eval(type, rho, demand, SHARE_SCALES[SHARE_SCALES.length - 1]!, sleep(o.maxSleepMs));
    return { p99Ms: last.p99, meanMs: last.mean, trainingSpeed: last.speed };
  }
}
