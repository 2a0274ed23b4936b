/**
 * The fleet simulator's state, shared by its parts: fleet.ts runs the steps, fleet-index.ts keys the first-fit
 * indexes, fleet-place.ts places and removes workloads, fleet-moves.ts is gpucolo's planner, fleet-tally.ts
 * settles the GPUs and counts. Here: what a run fixes before its first step, the GPU table, and the
 * replicas, services and training jobs with the load accessors every part reads.
 */
import type { Settler, SettleLaw } from './settle.ts';
import type { Workload } from './workload.ts';

export interface Placement {
  law: SettleLaw;
  /** Inference may share a GPU with other inference. */
  shareInference: boolean;
  /** Training may share a GPU with inference (and other training). */
  colocateTraining: boolean;
  /** What an inference service counts for in the utilisation check, and against what capacity. */
  inferenceUtil: 'plan' | 'mean' | 'current';
  /** A job joins a GPU with inference, or a replica a GPU with training, only if the law settles the training there at >= this speed at the GPU's mean inference load (per GPU type, training demand and load: the largest total demand / mean load that keeps it, speed falling with both). */
  trainingMinSpeed: number;
  /**
   * The fleet planner's moves, after each step on the load just measured: relieve a GPU whose inference load
   * passed the relief line (p99 alone at RELIEF of the SLO) down to the packing line, and every hour empty
   * lightly loaded inference-only GPUs into the others' room. Inference instances move (start a replica
   * there, drain here); training never moves.
   */
  rebalance: boolean;
  /** Replicas count for their recent peak (workload.ts appRecentPeak) on their GPU, not their current load. */
  packByPeak: boolean;
}

/** What a run fixes before its first step (fleet.ts simulateFleetRaw works it out from the policy and the options). */
export interface FleetContext {
  w: Workload;
  place: Placement;
  /** The policy's law, and alone (the violations a replica would have had alone). */
  settler: Settler;
  aloneSettler: Settler;
  speeds: number[];
  /** Inference packing capacity per type (busy fraction): p99 alone at the packing line x the SLO. */
  capByType: number[];
  /** The planner's relief line per type (busy fraction): p99 alone at the relief line x the SLO. */
  reliefByType: number[];
  /** gpucolo-paper's utilisation cap (1 for the others). */
  utilCap: number;
  /** The load (reference-GPU busy fraction) one replica may carry (replicaCapacity). */
  replicaLoad: number;
  /** GPU type of each slot, in the order switched-off GPUs are powered on. */
  slotType: Uint8Array;
  /** A move's start-up as a fraction of a step. */
  startupF: number;
  /** Consolidation's dwell, in steps. */
  dwellSteps: number;
}

export class FleetState {
  readonly w: Workload;
  readonly place: Placement;
  readonly settler: Settler;
  readonly aloneSettler: Settler;
  readonly speeds: number[];
  readonly capByType: number[];
  readonly reliefByType: number[];
  readonly utilCap: number;
  readonly slotType: Uint8Array;
  readonly nSlots: number;
  readonly startupF: number;
  readonly dwellSteps: number;

  // The GPU table: one entry per slot ever powered on (0 .. opened-1), grown by doubling (grow). Loads are
  // busy fractions on that GPU; gPreBad / gPreSpeed: its state during a move's start-up (fleet-tally.ts).
  cap = 1024;
  opened = 0;
  gType = new Uint8Array(this.cap); gSpeed = new Float64Array(this.cap); gMem = new Float64Array(this.cap); gMemUsed = new Float64Array(this.cap);
  gUtil = new Float64Array(this.cap); gInf = new Int32Array(this.cap); gTrain = new Int32Array(this.cap); gDemand = new Float64Array(this.cap);
  gPreBad = new Float64Array(this.cap); gPreSpeed = new Float64Array(this.cap);
  gBad = new Uint8Array(this.cap); gRho = new Float64Array(this.cap); gPeak = new Float64Array(this.cap); gTrainSpeed = new Float64Array(this.cap); gMeanLoad = new Float64Array(this.cap);

  // Replicas: a service whose load passes one GPU's capacity at the SLO runs ceil(load / capacity) replicas,
  // its load split evenly, re-evaluated every step (replicaCapacity; the same rule for every policy).
  // Unit u = one replica; service s owns units unitBase[s] .. unitBase[s+1]-1.
  readonly S: Workload['services'];
  readonly T: Workload['trainings'];
  readonly nS: number;
  readonly nT: number;
  readonly replicaLoad: number;
  readonly unitBase: Int32Array;
  readonly uSvc: Int32Array;
  readonly uGpu: Int32Array;
  readonly uUtil: Float64Array;
  readonly uMean: Float64Array;
  readonly uSlot: Int32Array;
  readonly sRep: Int32Array;
  readonly sUnits: Int32Array;
  readonly multi: number[] = []; // active services that may run more than one replica
  readonly tGpu: Int32Array;
  readonly tDone: Float64Array;
  readonly tProgress: Float64Array;
  readonly activeU: number[] = [];
  readonly activeS: number[] = [];
  readonly activeT: number[] = [];
  nextS = 0;
  nextT = 0;
  readonly jobOrder: number[];

  constructor(c: FleetContext) {
    this.w = c.w; this.place = c.place; this.settler = c.settler; this.aloneSettler = c.aloneSettler; this.speeds = c.speeds;
    this.capByType = c.capByType; this.reliefByType = c.reliefByType; this.utilCap = c.utilCap;
    this.slotType = c.slotType; this.nSlots = c.slotType.length; this.startupF = c.startupF; this.dwellSteps = c.dwellSteps;
    const w = c.w;
    const S = (this.S = w.services), T = (this.T = w.trainings);
    const nS = (this.nS = S.app.length), nT = (this.nT = T.arrival.length);
    this.replicaLoad = c.replicaLoad;
    const appMax = w.appLoad.map((x) => x.reduce((m, v) => Math.max(m, v), 0));
    const unitBase = (this.unitBase = new Int32Array(nS + 1));
    for (let s = 0; s < nS; s++) unitBase[s + 1] = unitBase[s]! + this.replicasFor(appMax[S.app[s]!]!);
    const nU = unitBase[nS]!;
    this.uSvc = new Int32Array(nU);
    for (let s = 0; s < nS; s++) for (let u = unitBase[s]!; u < unitBase[s + 1]!; u++) this.uSvc[u] = s;
    this.uGpu = new Int32Array(nU).fill(-1); this.uUtil = new Float64Array(nU); this.uMean = new Float64Array(nU); this.uSlot = new Int32Array(nU);
    this.sRep = new Int32Array(nS); this.sUnits = new Int32Array(nS);
    this.tGpu = new Int32Array(nT).fill(-1); this.tDone = new Float64Array(nT).fill(-1); this.tProgress = new Float64Array(nT);
    this.jobOrder = Array.from({ length: nT }, (_, i) => i).sort((a, b) => T.arrival[a]! - T.arrival[b]! || a - b);
  }

  /** Replicas a service of this load runs. */
  replicasFor(load: number): number { return Math.max(1, Math.ceil(load / this.replicaLoad - 1e-12)); }

  /** Doubles the GPU table. */
  grow(): void {
    const c2 = this.cap * 2;
    const g8 = new Uint8Array(c2); g8.set(this.gType); this.gType = g8;
    const b8 = new Uint8Array(c2); b8.set(this.gBad); this.gBad = b8;
    const re = (a: Float64Array) => { const b = new Float64Array(c2); b.set(a); return b; };
    const ri = (a: Int32Array) => { const b = new Int32Array(c2); b.set(a); return b; };
    this.gPreBad = re(this.gPreBad); this.gPreSpeed = re(this.gPreSpeed);
    this.gSpeed = re(this.gSpeed); this.gMem = re(this.gMem); this.gMemUsed = re(this.gMemUsed); this.gUtil = re(this.gUtil); this.gDemand = re(this.gDemand);
    this.gRho = re(this.gRho); this.gPeak = re(this.gPeak); this.gMeanLoad = re(this.gMeanLoad); this.gTrainSpeed = re(this.gTrainSpeed);
    this.gInf = ri(this.gInf); this.gTrain = ri(this.gTrain);
    this.cap = c2;
  }

  appOf(u: number): number { return this.S.app[this.uSvc[u]!]!; }
  /** A replica's share of its service's current load, recent peak (what gpucolo packs by) and mean. */
  loadOf(u: number, t: number): number { return this.w.appLoad[this.appOf(u)]![t]! / this.sRep[this.uSvc[u]!]!; }
  peakOf(u: number, t: number): number { return this.w.appRecentPeak[this.appOf(u)]![t]! / this.sRep[this.uSvc[u]!]!; }
  meanOf(u: number): number { return this.w.appMeanLoad[this.appOf(u)]! / this.sRep[this.uSvc[u]!]!; }
  utilOf(u: number, t: number): number {
    const p = this.place.inferenceUtil;
    return p === 'plan' ? this.w.appPlanLoad[this.appOf(u)]! / this.sRep[this.uSvc[u]!]! : p === 'mean' ? this.meanOf(u) : this.loadOf(u, t);
  }
}
