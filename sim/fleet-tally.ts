/**
 * The fleet simulator's accounting of a step, after placement: every GPU in use settled by the policy's
 * law (settle.ts), with the state a move's start-up leaves on its old GPU; the GPUs in use counted; each
 * replica's share of a violation counted; training progressed at its settled speed. And the run's totals.
 */
import type { Planner } from './fleet-moves.ts';
import type { FleetState } from './fleet-state.ts';
import { INFERENCE } from './workload.ts';

export class Tally {
  readonly st: FleetState;
  readonly moves: Planner;
  /** GPUs in use, GPUs with inference, GPUs with training only, per step. */
  readonly gpus: Float64Array;
  readonly infGpus: Float64Array;
  readonly trainGpus: Float64Array;
  violatedBeyond = 0; violatedMean = 0; violated = 0; serviceSteps = 0; violatedBurst = 0; burstSteps = 0; replicaSteps = 0;
  /** GPU-steps counted only because a move's start-up held them. */
  held = 0;
  readonly burst0: number;
  readonly burst1: number;

  constructor(st: FleetState, moves: Planner) {
    this.st = st; this.moves = moves;
    const w = st.w;
    this.gpus = new Float64Array(w.steps); this.infGpus = new Float64Array(w.steps); this.trainGpus = new Float64Array(w.steps);
    this.burst0 = Math.round((20 * 86400) / w.stepS); this.burst1 = Math.round((40 * 86400) / w.stepS);
  }

  /** Settles step t, counts its GPUs and violations, and progresses training. */
  step(t: number): void {
    const pre = this.settleStartups(t);
    this.settleGpus(t, pre);
    this.countServices(t, pre);
    this.moves.startupsDone();
    this.progressTraining(t);
  }

  /** Moves started at this step: the old GPUs' state for the start-up (their load with the moved replicas). */
  private settleStartups(t: number): Map<number, number> {
    const st = this.st, { uGpu, gSpeed, gType, gRho, gTrain, gDemand, gPreBad, gPreSpeed } = st;
    const uFrom = this.moves.uFrom;
    const pre = new Map<number, number>(); // old GPU -> extra load (busy fraction on it)
    for (const u of this.moves.movedNow) {
      const from = uFrom[u]!;
      if (uGpu[u]! >= 0 && from >= 0 && from !== uGpu[u]) pre.set(from, (pre.get(from) ?? 0) + st.loadOf(u, t) / gSpeed[from]!);
    }
    for (const [g, extra] of pre) {
      const r = st.settler.settle(gType[g]!, gRho[g]! + extra, gTrain[g]! > 0 ? Math.min(1, gDemand[g]!) : 0);
      gPreBad[g] = r.p99Ms > INFERENCE.sloMs ? 1 : 0;
      gPreSpeed[g] = gTrain[g]! > 0 ? r.trainingSpeed : 1;
    }
    return pre;
  }

  /** Settles every GPU in use and counts them (a GPU a move emptied counts for the start-up). */
  private settleGpus(t: number, pre: Map<number, number>): void {
    const st = this.st, { gInf, gTrain, gType, gRho, gDemand, gTrainSpeed, gPreSpeed, gBad, startupF, settler } = st;
    let used = 0, inf = 0, train = 0;
    for (const g of pre.keys()) if (gInf[g] === 0 && gTrain[g] === 0) { used += startupF; this.held += startupF; }
    for (let g = 0; g < st.opened; g++) {
      if (gInf[g] === 0 && gTrain[g] === 0) continue;
      used++;
      if (gInf[g]! > 0) inf++; else train++;
      const r = st.place.law === 'alone' && gInf[g] === 0
        ? { p99Ms: 0, meanMs: 0, trainingSpeed: 1 }
        : settler.settle(gType[g]!, gRho[g]!, gInf[g]! > 0 ? Math.min(1, gDemand[g]!) : 0);
      gTrainSpeed[g] = gInf[g] === 0 ? 1 : r.trainingSpeed;
      if (pre.has(g) && gTrain[g]! > 0) gTrainSpeed[g] = startupF * gPreSpeed[g]! + (1 - startupF) * gTrainSpeed[g]!;
      gBad[g] = gInf[g]! > 0 && r.p99Ms > INFERENCE.sloMs ? 1 : 0;
      if (gInf[g]! > 0 && r.meanMs > INFERENCE.sloMs) gBad[g]! |= 2;
    }
    this.gpus[t] = used; this.infGpus[t] = inf; this.trainGpus[t] = train;
  }

  /** A service-step counts once; a replica on a violating GPU counts for its share of the requests. */
  private countServices(t: number, pre: Map<number, number>): void {
    const st = this.st, { uGpu, uSvc, sRep, gBad, gPreBad, gType, gSpeed, startupF } = st;
    const uFrom = this.moves.uFrom;
    // Summed in locals (the hot loop), in the same order as into the fields.
    let { serviceSteps, replicaSteps, burstSteps, violatedMean, violated, violatedBurst, violatedBeyond } = this;
    const inBurst = t >= this.burst0 && t < this.burst1;
    for (const u of st.activeU) {
      const g = uGpu[u]!, share = 1 / sRep[uSvc[u]!]!;
      serviceSteps += share;
      replicaSteps++;
      if (inBurst) burstSteps += share;
      if (gBad[g]! & 2) violatedMean += share;
      // Where the replica served during the start-up of a move: its old GPU (moved) or its own with the moved ones still on it.
      const at = uFrom[u]! >= 0 && uFrom[u] !== g && pre.has(uFrom[u]!) ? uFrom[u]! : pre.has(g) ? g : -1;
      const bad = at >= 0 ? startupF * gPreBad[at]! + (1 - startupF) * (gBad[g]! & 1) : gBad[g]! & 1;
      if (bad === 0) continue;
      violated += share * bad;
      if (inBurst) violatedBurst += share * bad;
      if (st.aloneSettler.settle(gType[g]!, st.loadOf(u, t) / gSpeed[g]!, 0).p99Ms <= INFERENCE.sloMs) violatedBeyond += share * bad;
    }
    this.serviceSteps = serviceSteps; this.replicaSteps = replicaSteps; this.burstSteps = burstSteps; this.violatedMean = violatedMean;
    this.violated = violated; this.violatedBurst = violatedBurst; this.violatedBeyond = violatedBeyond;
  }

  /** Training progress at step t (work in reference-GPU seconds). */
  private progressTraining(t: number): void {
    const st = this.st, { T, tGpu, tDone, tProgress, gTrainSpeed, gSpeed } = st, stepS = st.w.stepS;
    for (const j of st.activeT) {
      const g = tGpu[j]!;
      const rate = gTrainSpeed[g]! * gSpeed[g]!;
      const need = T.workS[j]! - tProgress[j]!;
      if (rate * stepS >= need) { tDone[j] = t + need / (rate * stepS); tProgress[j] = T.workS[j]!; }
      else tProgress[j]! += rate * stepS;
    }
  }

  /** Every job that arrived within the run: how many, how many finished, their mean completion time in h (unfinished: time so far). */
  jobs(): { jobs: number; finished: number; jctMeanH: number } {
    const st = this.st, { T, tDone } = st, w = st.w;
    let jctSum = 0, finished = 0, jobs = 0;
    for (let j = 0; j < st.nT; j++) {
      if (T.arrival[j]! >= w.steps) continue;
      jobs++;
      const end = tDone[j]! >= 0 ? tDone[j]! + 1 : w.steps;
      if (tDone[j]! >= 0) finished++;
      jctSum += (end - T.arrival[j]!) * w.stepS;
    }
    return { jobs, finished, jctMeanH: jobs > 0 ? jctSum / jobs / 3600 : 0 };
  }
}
