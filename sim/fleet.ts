/**
 * The fleet simulator: one policy over the workload, step by step (10 minutes). Each step: services and
 * training jobs that ended leave; every service runs ceil(load / one GPU's capacity at the SLO) replicas
 * (replicaCapacity; the same rule for every policy), surplus replicas stop; the inference load of every GPU
 * is summed from its replicas' shares; arrivals (new services, missing replicas, jobs) are placed by the
 * policy (first fit on utilisation and memory over the GPUs in slot order, answered by the FirstFit index;
 * a new GPU, the next switched-off slot in the run's slot order, when nothing fits); every GPU in use is
 * settled (settle.ts: control/'s law in closed loop on gpu/model where training shares the GPU, the fluid
 * physics of physics.ts where inference is alone); a replica counts its share of a violation for the step
 * when its GPU's p99 exceeds the SLO; training jobs progress at their settled speed; gpucolo's planner then
 * moves replicas (priced: a start-up on both GPUs). A GPU with nothing on it is off and not counted.
 */
import { loadProfile } from '../gpu/model/index.ts';
import { FirstFit } from './firstfit.ts';
import { DEMAND_GRID, RHO_GRID, Settler, type SettleLaw } from './settle.ts';
import { INFERENCE, type Workload } from './workload.ts';

export const FLEET_POLICIES = ['no-colocation', 'separate-5-1', 'gslice', 'gpucolo-paper', 'gpucolo-no-moves', 'gpucolo'] as const;
export type FleetPolicy = (typeof FLEET_POLICIES)[number];

export interface FleetResult {
  policy: FleetPolicy;
  /** Which switched-off GPU a new workload powers on (the same for every policy of a run). */
  slotOrder: SlotOrder;
  /**
   * The policy's packing line: gslice and gpucolo - the fraction of the SLO a GPU's p99 alone may reach at
   * the load it is filled to; gpucolo-paper - its utilisation cap; null where nothing is packed.
   */
  packLine: number | null;
  /** GPUs in use at each step. */
  gpus: Float64Array;
  gpusDailyMean: number[];
  gpusMean: number;
  gpusPeak: number;
  /** Violated inference-service-steps / all inference-service-steps. */
  sloViolationRate: number;
  /** The same, counting only steps the service would have met alone on a GPU of the same type. */
  sloViolationRateBeyondAlone: number;
  sloViolationRateBurst: number;
  /** Service-steps whose GPU's MEAN latency exceeds the SLO: the measure the paper's law controls and reports. */
  sloViolationRateMean: number;
  serviceSteps: number;
  /** GPUs with inference on them (alone or with training) and GPUs with training only: means over the steps. */
  gpusWithInferenceMean: number;
  gpusTrainingOnlyMean: number;
  /** Replicas per service, averaged over service-steps (1 = every service fits one GPU at the SLO). */
  replicasPerService: number;
  /** Mean job completion time, h, over every job that arrived (jobs unfinished at the end: time so far). */
  trainingJctMeanH: number;
  jobsFinished: number;
  jobs: number;
  /** GPU slots ever opened beyond the v2020 inventory. */
  overflowGpus: number;
  /** Inference replicas moved by the planner (relief and consolidation). */
  inferenceMoves: number;
  /** The same per service per day alive (service-days: service-steps x step / 1 day). */
  inferenceMovesPerServiceDay: number;
  /** Largest number of moves of one service in one day. */
  inferenceMovesMaxPerServiceDay: number;
  /** Start-up time charged per move, s (the replica is held on both GPUs for it). */
  moveStartupS: number;
  /** GPUs counted only because a move's start-up held them (a source the moves emptied), mean over the steps. */
  gpusHeldByMovesMean: number;
  wallMs: number;
}

interface Placement {
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

/**
 * Packing line and relief line of the planner, as fractions of the SLO the alone p99 may reach at a GPU's
 * packing figure (its replicas' recent peaks). 0.95 / 0.98: the fewest GPUs at violations under 0.1% of
 * the lines tried (0.7 / 0.85 to 0.95 / 0.98, bench/sim-fleet.ts --sweep).
 */
export const PACK_SLO_FRACTION = 0.95;
export const RELIEF_SLO_FRACTION = 0.98;
/** Consolidation runs every this many steps (1 h) and empties at most this fraction of the GPUs in use. */
const CONSOLIDATE_EVERY = 6;
const CONSOLIDATE_MAX_FRACTION = 0.05;
/**
 * gpucolo's co-location floor: a training job joins inference (or a replica a GPU with training) only
 * where the law settles the training at >= this fraction of its speed alone. 0.3: lower changes little
 * (bench/sim-fleet.ts --sweep: 0.2 saves 1 GPU of 1,636 at the same JCT; 0.5 costs 15 and trains faster).
 */
export const TRAINING_MIN_SPEED = 0.3;
/** A replica's start-up time on its new GPU, s: the replica is held on both GPUs for it (default of --move-startup-s). */
export const MOVE_STARTUP_S = 60;
/** Consolidation does not move a replica that moved less than this long ago, s; relief may (latency first). */
export const MOVE_DWELL_S = 6 * 3600;

const PLACEMENT: Record<Exclude<FleetPolicy, 'separate-5-1'>, Placement> = {
  'no-colocation': { law: 'alone', shareInference: false, colocateTraining: false, inferenceUtil: 'current', trainingMinSpeed: 0, rebalance: false, packByPeak: false },
  gslice: { law: 'alone', shareInference: true, colocateTraining: false, inferenceUtil: 'current', trainingMinSpeed: 0, rebalance: false, packByPeak: false },
  'gpucolo-paper': { law: 'gpucolo-paper', shareInference: true, colocateTraining: true, inferenceUtil: 'mean', trainingMinSpeed: 0, rebalance: false, packByPeak: false },
  'gpucolo-no-moves': { law: 'gpucolo', shareInference: true, colocateTraining: true, inferenceUtil: 'current', trainingMinSpeed: TRAINING_MIN_SPEED, rebalance: false, packByPeak: true },
  gpucolo: { law: 'gpucolo', shareInference: true, colocateTraining: true, inferenceUtil: 'current', trainingMinSpeed: TRAINING_MIN_SPEED, rebalance: true, packByPeak: true },
};
/** Each policy's own packing line (see FleetResult.packLine). */
export const DEFAULT_PACK_LINE: Record<'gslice' | 'gpucolo-paper' | 'gpucolo' | 'gpucolo-no-moves', number> = {
  gslice: 1, 'gpucolo-paper': 1, gpucolo: PACK_SLO_FRACTION, 'gpucolo-no-moves': PACK_SLO_FRACTION,
};
export const SLOT_ORDERS = ['fastest-first', 'trace'] as const;

export type SlotOrder = (typeof SLOT_ORDERS)[number];

export interface SimulateOptions {
  /**
   * Which switched-off GPU a new workload powers on, for every policy alike: 'fastest-first' (default) the
   * fastest type with a slot left (by speed, then memory; within a type in trace order), so first fit fills
   * fast GPUs before slow ones; 'trace' the trace's (seeded random) slot order.
   */
  slotOrder?: SlotOrder;
  /** Overrides the policy's packing line (FleetResult.packLine): the matched-violation sweeps. */
  packLine?: number;
  /** Start-up time of a moved replica, s (default MOVE_STARTUP_S). */
  moveStartupS?: number;
  /** Least time between two consolidation moves of one replica, s (default MOVE_DWELL_S). */
  moveDwellS?: number;
  /** Overrides the policy's trainingMinSpeed (gpucolo: the speed below which training does not join inference). */
  trainingMinSpeed?: number;
  /** Overrides the planner's relief line (fraction of the SLO the alone p99 may reach). */
  reliefSloFraction?: number;
  /** Called now and then with the fraction done. */
  onProgress?: (fraction: number) => void;
}

/** Runs one policy over the workload. separate-5-1 is derived from a no-colocation run (same physics). */
export function simulateFleet(w: Workload, policy: FleetPolicy, options: SimulateOptions = {}): FleetResult {
  if (policy === 'separate-5-1') {
    const t0 = Date.now();
    const order = options.slotOrder ?? 'fastest-first';
    const r = separate(w, noColocation.get(w)?.get(order) ?? simulateFleetRaw(w, 'no-colocation', options));
    return { ...r, wallMs: Date.now() - t0 };
  }
  const raw = simulateFleetRaw(w, policy, options);
  if (policy === 'no-colocation' && options.trainingMinSpeed === undefined) {
    let m = noColocation.get(w);
    if (!m) noColocation.set(w, (m = new Map()));
    m.set(options.slotOrder ?? 'fastest-first', raw);
  }
  return raw.result;
}

/** separate-5-1 is derived from the no-colocation run of the same workload and slot order: kept, not run twice. */
const noColocation = new WeakMap<Workload, Map<SlotOrder, Raw>>();

interface Raw { result: FleetResult; infGpus: Float64Array; trainGpus: Float64Array }

function simulateFleetRaw(w: Workload, policy: Exclude<FleetPolicy, 'separate-5-1'>, options: SimulateOptions): Raw {
  const t0 = Date.now();
  const place = { ...PLACEMENT[policy], ...(options.trainingMinSpeed !== undefined ? { trainingMinSpeed: options.trainingMinSpeed } : {}) };
  const slotOrder: SlotOrder = options.slotOrder ?? 'fastest-first';
  if (!(SLOT_ORDERS as readonly string[]).includes(slotOrder)) throw new RangeError(`slot order must be one of ${SLOT_ORDERS.join(', ')}, got ${JSON.stringify(slotOrder)}`);
  const packLine = policy === 'no-colocation' ? null : options.packLine ?? DEFAULT_PACK_LINE[policy];
  if (packLine !== null && !(packLine > 0 && packLine <= 1)) throw new RangeError(`packing line must be in (0, 1], got ${packLine}`);
  const startupS = options.moveStartupS ?? MOVE_STARTUP_S;
  if (!(startupS >= 0 && startupS <= w.stepS)) throw new RangeError(`move start-up must be 0..${w.stepS} s (one step), got ${startupS}`);
  const startupF = startupS / w.stepS;
  const dwellSteps = Math.ceil((options.moveDwellS ?? MOVE_DWELL_S) / w.stepS);
  const profile = loadProfile('rtx3090-resnet50-wrn101');
  const speeds = w.types.map((t) => t.speed);
  const settler = new Settler(place.law, { profile, sloMs: INFERENCE.sloMs, batch: INFERENCE.batch }, speeds);
  const aloneSettler = new Settler('alone', { profile, sloMs: INFERENCE.sloMs, batch: INFERENCE.batch }, speeds);
  // Inference packing capacity per type: the load at which p99 alone reaches the packing line x the SLO
  // (gslice, gpucolo); gpucolo-paper packs by utilisation (utilCap).
  const utilCap = place.inferenceUtil === 'mean' ? packLine ?? 1 : 1;
  const target = INFERENCE.sloMs * (place.inferenceUtil === 'mean' ? 1 : packLine ?? 1);
  const capByType = speeds.map((_, i) => settler.aloneCapacity(i, target));
  const reliefByType = speeds.map((_, i) => settler.aloneCapacity(i, INFERENCE.sloMs * (options.reliefSloFraction ?? RELIEF_SLO_FRACTION)));
  const replicaLoad = replicaCapacity(aloneSettler, speeds);
  let moves = 0, held = 0;

  const slotType = slotOrder === 'fastest-first' ? fastestFirst(w) : w.slotType;
  const nSlots = slotType.length;
  let cap = 1024;
  let gType = new Uint8Array(cap), gSpeed = new Float64Array(cap), gMem = new Float64Array(cap), gMemUsed = new Float64Array(cap);
  let gUtil = new Float64Array(cap), gInf = new Int32Array(cap), gTrain = new Int32Array(cap), gDemand = new Float64Array(cap);
  let gPreBad = new Float64Array(cap), gPreSpeed = new Float64Array(cap);
  let gBad = new Uint8Array(cap), gRho = new Float64Array(cap), gPeak = new Float64Array(cap), gTrainSpeed = new Float64Array(cap), gMeanLoad = new Float64Array(cap);
  let opened = 0;
  const grow = () => {
    const c2 = cap * 2;
    const g8 = new Uint8Array(c2); g8.set(gType); gType = g8;
    const b8 = new Uint8Array(c2); b8.set(gBad); gBad = b8;
    const re = (a: Float64Array) => { const b = new Float64Array(c2); b.set(a); return b; };
    const ri = (a: Int32Array) => { const b = new Int32Array(c2); b.set(a); return b; };
    gPreBad = re(gPreBad); gPreSpeed = re(gPreSpeed);
    gSpeed = re(gSpeed); gMem = re(gMem); gMemUsed = re(gMemUsed); gUtil = re(gUtil); gDemand = re(gDemand); gRho = re(gRho); gPeak = re(gPeak); gMeanLoad = re(gMeanLoad); gTrainSpeed = re(gTrainSpeed);
    gInf = ri(gInf); gTrain = ri(gTrain);
    cap = c2;
  };

  // First-fit indexes (firstfit.ts): the same choice as scanning the GPUs in slot order.
  //   infFit   - where an inference replica may go: free inference capacity (reference-GPU load) and memory
  //   jobFit   - where a training job may go: free training demand and memory
  //   emptyFit - switched-off GPUs (one-workload-per-GPU placement and the planner's fresh GPUs)
  //   room1/room08 - the planner's targets: GPUs with inference, free room under 100% / 80% of the packing line
  const infFit = new FirstFit(), jobFit = new FirstFit(), emptyFit = new FirstFit();
  const room1 = new FirstFit(), room08 = new FirstFit();
  const okTotal = new Map<number, number>();
  /** Largest total training demand (grid) such that the law settles every smaller grid total at >= trainingMinSpeed. */
  const okTotalDemand = (type: number, meanLoad: number): number => {
    const rq = Math.ceil(meanLoad / RHO_GRID - 1e-9);
    const key = type * 8192 + Math.min(rq, 8191);
    let v = okTotal.get(key);
    if (v === undefined) {
      v = 0;
      for (let k = 1; k * DEMAND_GRID <= 1 + 1e-9; k++) {
        if (settler.settle(type, meanLoad, k * DEMAND_GRID).trainingSpeed < place.trainingMinSpeed) break;
        v = k * DEMAND_GRID;
      }
      okTotal.set(key, v);
    }
    return v;
  };
  const okMean = new Map<number, number>();
  /**
   * Largest mean inference load (busy fraction on this GPU, load grid) at which the law still settles a
   * training demand at >= trainingMinSpeed (training speed falls as inference load rises: bisection).
   */
  const okMeanLoad = (type: number, demand: number): number => {
    const dq = Math.max(1, Math.ceil(Math.min(1, demand) / DEMAND_GRID - 1e-9));
    const key = type * 64 + dq;
    let v = okMean.get(key);
    if (v === undefined) {
      const ok = (rq: number) => settler.settle(type, rq * RHO_GRID, dq * DEMAND_GRID).trainingSpeed >= place.trainingMinSpeed;
      if (!ok(0)) v = -1;
      else {
        let lo = 0, hi = 4095;
        if (ok(hi)) lo = hi;
        while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (ok(mid)) lo = mid; else hi = mid; }
        v = lo * RHO_GRID;
      }
      okMean.set(key, v);
    }
    return v;
  };
  /** Room left for more mean inference load (reference-GPU units) before the training on g drops below trainingMinSpeed. */
  const trainingRoom = (g: number) => place.trainingMinSpeed > 0 && gTrain[g]! > 0
    ? (okMeanLoad(gType[g]!, gDemand[g]!) - gMeanLoad[g]!) * gSpeed[g]!
    : Infinity;
  const infKey = (g: number, out: Float64Array) => {
    if (g >= opened) { out[0] = -Infinity; out[1] = -Infinity; return; }
    if (gInf[g] === 0 && gTrain[g] === 0) { out[0] = Infinity; out[1] = Infinity; return; }
    out[1] = gMem[g]! - gMemUsed[g]!;
    if (!place.shareInference || (!place.colocateTraining && gTrain[g]! > 0)) { out[0] = -Infinity; return; }
    out[2] = trainingRoom(g);
    if (place.packByPeak) out[0] = (capByType[gType[g]!]! - gPeak[g]!) * gSpeed[g]!;
    else if (place.inferenceUtil === 'mean') out[0] = (utilCap - gUtil[g]!) * gSpeed[g]!;
    else out[0] = (capByType[gType[g]!]! - gRho[g]!) * gSpeed[g]!;
  };
  const jobKey = (g: number, out: Float64Array) => {
    if (g >= opened) { out[0] = -Infinity; out[1] = -Infinity; return; }
    if (gInf[g] === 0 && gTrain[g] === 0) { out[0] = Infinity; out[1] = Infinity; return; }
    out[1] = gMem[g]! - gMemUsed[g]!;
    if (!place.colocateTraining) { out[0] = -Infinity; return; }
    let a = 1 - gDemand[g]!;
    if (place.inferenceUtil === 'mean') a = Math.min(a, utilCap - gUtil[g]!);
    if (place.trainingMinSpeed > 0 && gInf[g]! > 0) a = Math.min(a, okTotalDemand(gType[g]!, gMeanLoad[g]!) - gDemand[g]!);
    out[0] = a;
  };
  const roomKey = (fill: number) => (g: number, out: Float64Array) => {
    if (g >= opened || gInf[g] === 0) { out[0] = -Infinity; out[1] = -Infinity; return; }
    out[0] = (fill * capByType[gType[g]!]! - gPeak[g]!) * gSpeed[g]!;
    out[1] = gMem[g]! - gMemUsed[g]!;
    out[2] = trainingRoom(g);
  };
  const room1Key = roomKey(1), room08Key = roomKey(0.8);
  const kv = new Float64Array(3);
  /** Re-keys GPU g in every index after its state changed. */
  const touch = (g: number) => {
    emptyFit.set(g, gInf[g] === 0 && gTrain[g] === 0 ? 1 : -Infinity, 0);
    if (place.shareInference) { kv[2] = Infinity; infKey(g, kv); infFit.set(g, kv[0]!, kv[1]!, kv[2]!); }
    if (place.colocateTraining) { jobKey(g, kv); jobFit.set(g, kv[0]!, kv[1]!); }
    if (place.rebalance) { room1Key(g, kv); room1.set(g, kv[0]!, kv[1]!, kv[2]!); room08Key(g, kv); room08.set(g, kv[0]!, kv[1]!, kv[2]!); }
  };
  const open = () => {
    if (opened === cap) grow();
    const g = opened++;
    const t = slotType[g % nSlots]!;
    gType[g] = t; gSpeed[g] = speeds[t]!; gMem[g] = w.types[t]!.memoryGiB;
    touch(g);
    return g;
  };
  const firstEmpty = () => { const g = emptyFit.find(1, 0); return g >= 0 ? g : open(); };

  const S = w.services, T = w.trainings;
  const nS = S.app.length, nT = T.arrival.length;
  // Replicas: a service whose load passes one GPU's capacity at the SLO runs ceil(load / capacity) replicas,
  // its load split evenly, re-evaluated every step (replicaCapacity; the same rule for every policy).
  // Unit u = one replica; service s owns units unitBase[s] .. unitBase[s+1]-1.
  const appMax = w.appLoad.map((c) => c.reduce((m, v) => Math.max(m, v), 0));
  const replicasFor = (load: number) => Math.max(1, Math.ceil(load / replicaLoad - 1e-12));
  const unitBase = new Int32Array(nS + 1);
  for (let s = 0; s < nS; s++) unitBase[s + 1] = unitBase[s]! + replicasFor(appMax[S.app[s]!]!);
  const nU = unitBase[nS]!;
  const uSvc = new Int32Array(nU);
  for (let s = 0; s < nS; s++) for (let u = unitBase[s]!; u < unitBase[s + 1]!; u++) uSvc[u] = s;
  const uGpu = new Int32Array(nU).fill(-1), uUtil = new Float64Array(nU), uMean = new Float64Array(nU), uSlot = new Int32Array(nU);
  const sRep = new Int32Array(nS), sUnits = new Int32Array(nS);
  const multi: number[] = []; // active services that may run more than one replica
  const tGpu = new Int32Array(nT).fill(-1), tDone = new Float64Array(nT).fill(-1), tProgress = new Float64Array(nT);
  const activeU: number[] = [], activeS: number[] = [], activeT: number[] = [];
  let nextS = 0, nextT = 0;
  const jobOrder = Array.from({ length: nT }, (_, i) => i).sort((a, b) => T.arrival[a]! - T.arrival[b]! || a - b);

  const gpus = new Float64Array(w.steps), infGpus = new Float64Array(w.steps), trainGpus = new Float64Array(w.steps);
  let violatedBeyond = 0, violatedMean = 0, violated = 0, serviceSteps = 0, violatedBurst = 0, burstSteps = 0, replicaSteps = 0;
  const burst0 = Math.round((20 * 86400) / w.stepS), burst1 = Math.round((40 * 86400) / w.stepS);

  const appOf = (u: number) => S.app[uSvc[u]!]!;
  /** A replica's share of its service's current load, recent peak (what gpucolo packs by) and mean. */
  const loadOf = (u: number, t: number) => w.appLoad[appOf(u)]![t]! / sRep[uSvc[u]!]!;
  const peakOf = (u: number, t: number) => w.appRecentPeak[appOf(u)]![t]! / sRep[uSvc[u]!]!;
  const meanOf = (u: number) => w.appMeanLoad[appOf(u)]! / sRep[uSvc[u]!]!;
  const utilOf = (u: number, t: number) => place.inferenceUtil === 'plan' ? w.appPlanLoad[appOf(u)]! / sRep[uSvc[u]!]! : place.inferenceUtil === 'mean' ? meanOf(u) : loadOf(u, t);

  /** Adds unit u to GPU g (its current load to gRho, its recent peak to gPeak). */
  const attach = (u: number, g: number, t: number) => {
    uGpu[u] = g;
    uUtil[u] = utilOf(u, t) / gSpeed[g]!;
    uMean[u] = meanOf(u) / gSpeed[g]!;
    gUtil[g]! += uUtil[u]!; gMeanLoad[g]! += uMean[u]!;
    gMemUsed[g]! += w.serviceMemGiB; gInf[g]!++;
    gRho[g]! += loadOf(u, t) / gSpeed[g]!;
    if (place.packByPeak) gPeak[g]! += peakOf(u, t) / gSpeed[g]!;
    touch(g);
  };
  const detach = (u: number, t: number) => {
    const g = uGpu[u]!;
    gUtil[g]! -= uUtil[u]!; gMeanLoad[g]! -= uMean[u]!;
    gMemUsed[g]! -= w.serviceMemGiB; gInf[g]!--;
    gRho[g]! -= loadOf(u, t) / gSpeed[g]!;
    if (place.packByPeak) gPeak[g]! -= peakOf(u, t) / gSpeed[g]!;
    if (gInf[g] === 0) { gUtil[g] = place.inferenceUtil === 'mean' ? gDemand[g]! : 0; gMeanLoad[g] = 0; gRho[g] = 0; gPeak[g] = 0; }
    uGpu[u] = -1;
    touch(g);
  };
  /**
   * gpucolo: a replica joins a GPU with training only if the law still settles the training there at
   * >= trainingMinSpeed at the GPU's mean load with the replica (the job rule, seen from the other side).
   */
  const keepsTraining = (mean: number, not: number) => place.trainingMinSpeed > 0
    ? (k: number) => k !== not && (gTrain[k] === 0 || settler.settle(gType[k]!, gMeanLoad[k]! + mean / gSpeed[k]!, Math.min(1, gDemand[k]!)).trainingSpeed >= place.trainingMinSpeed)
    : (k: number) => k !== not;
  const placeUnit = (u: number, t: number) => {
    let g: number;
    if (!place.shareInference) g = firstEmpty();
    else {
      const need = place.packByPeak ? peakOf(u, t) : utilOf(u, t);
      // gpucolo: a replica joins a GPU with training only if the law still settles the training there at
      // >= trainingMinSpeed at the GPU's mean load with the replica (the job rule, seen from the other side).
      g = infFit.find(need, w.serviceMemGiB, keepsTraining(meanOf(u), -1), meanOf(u));
      if (g < 0) g = open();
    }
    attach(u, g, t);
    uSlot[u] = activeU.length;
    activeU.push(u);
  };
  const removeUnit = (u: number, t: number) => {
    detach(u, t);
    const i = uSlot[u]!, last = activeU[activeU.length - 1]!;
    activeU[i] = last; uSlot[last] = i; activeU.pop();
  };
  /** Service s now runs r replicas: the surplus ones stop, the others take their new share (missing ones are placed later). */
  const setReplicas = (s: number, r: number, t: number) => {
    if (r === sRep[s]) return;
    while (sUnits[s]! > r) removeUnit(unitBase[s]! + --sUnits[s]!, t);
    // Re-share: take the running replicas out at the old share and put them back at the new one.
    const base = unitBase[s]!, n = sUnits[s]!;
    const at: number[] = [];
    for (let k = 0; k < n; k++) { at.push(uGpu[base + k]!); detach(base + k, t); }
    sRep[s] = r;
    for (let k = 0; k < n; k++) attach(base + k, at[k]!, t);
  };
  const fillReplicas = (s: number, t: number) => {
    while (sUnits[s]! < sRep[s]!) placeUnit(unitBase[s]! + sUnits[s]!++, t);
  };
  const placeTraining = (j: number) => {
    const demand = T.demand[j]!, mem = T.memoryGiB[j]!;
    let g: number;
    if (!place.colocateTraining) g = firstEmpty();
    else {
      const check = place.trainingMinSpeed > 0
        ? (k: number) => gInf[k] === 0 || settler.settle(gType[k]!, gMeanLoad[k]!, Math.min(1, gDemand[k]! + demand)).trainingSpeed >= place.trainingMinSpeed
        : undefined;
      g = jobFit.find(demand, mem, check);
      if (g < 0) g = open();
    }
    tGpu[j] = g;
    gDemand[g]! += demand;
    gMemUsed[g]! += mem;
    if (place.inferenceUtil === 'mean') gUtil[g]! += demand;
    gTrain[g]!++;
    activeT.push(j);
    touch(g);
  };

  /** Moves unit u from its GPU to g. */
  // A move is decided at the end of step t on the load just measured and starts with step t + 1: for the
  // start-up time the replica is held on both GPUs (its old GPU keeps serving it; the new one holds its
  // memory and is powered), so the old GPU carries it for startupF of step t + 1 (its load, its violations,
  // training beside it, and the GPU counted if the move emptied it).
  const uFrom = new Int32Array(nU).fill(-1), uMovedAt = new Int32Array(nU).fill(-1e9);
  let movedNow: number[] = [];
  const sMoves = new Map<number, number>(); // service * 65536 + day -> moves (for the per-day maximum)
  const move = (u: number, g: number, t: number) => {
    if (uFrom[u] < 0) movedNow.push(u);
    if (uFrom[u] < 0) uFrom[u] = uGpu[u]!;
    uMovedAt[u] = t;
    const key = uSvc[u]! * 65536 + Math.floor((t * w.stepS) / 86400);
    sMoves.set(key, (sMoves.get(key) ?? 0) + 1);
    detach(u, t); attach(u, g, t);
  };
  const dwelling = (u: number, t: number) => t - uMovedAt[u]! < dwellSteps;
  /** A GPU (other than `not`) with inference on it that takes a replica of this recent peak under fill x the packing line; -1 when none. */
  const roomFor = (u: number, peak: number, not: number, fill: 1 | 0.8) =>
    (fill === 1 ? room1 : room08).find(peak, w.serviceMemGiB, keepsTraining(meanOf(u), not), meanOf(u));
  let wanted = new Uint8Array(0);
  const rebalance = (t: number): number => {
    if (wanted.length < opened) wanted = new Uint8Array(cap);
    let n = 0;
    const consolidate = t % CONSOLIDATE_EVERY === 0;
    // The replicas of each GPU the planner looks at: those past the relief line (and, on consolidation
    // steps, all of them), gathered in one pass over the running replicas.
    const over: number[] = [];
    for (let g = 0; g < opened; g++) if (gInf[g]! > 0 && gPeak[g]! > reliefByType[gType[g]!]!) over.push(g);
    if (over.length === 0 && !consolidate) return 0;
    if (!consolidate) for (const g of over) wanted[g] = 1;
    const byGpu = new Map<number, number[]>();
    for (const u of activeU) {
      const g = uGpu[u]!;
      if (!consolidate && wanted[g] !== 1) continue;
      let a = byGpu.get(g); if (!a) byGpu.set(g, (a = [])); a.push(u);
    }
    if (!consolidate) for (const g of over) wanted[g] = 0;
    const pk = (u: number) => peakOf(u, t);
    // Relief: a GPU whose recent peak passed its relief line sheds its largest replicas until it is back
    // under the packing line.
    for (const g of over) {
      const list = byGpu.get(g) ?? [];
      // Largest first, replicas that moved within the dwell last (latency first: they may still move).
      list.sort((a, b) => Number(dwelling(a, t)) - Number(dwelling(b, t)) || pk(b) - pk(a));
      for (const u of list) {
        if (gPeak[g]! <= capByType[gType[g]!]! || gInf[g]! <= 1) break;
        // A target below 80% of its packing line first (one that takes it with room to spare does not pass
        // its own relief line at the next rise), then any under the line, then a switched-off GPU.
        let to = roomFor(u, pk(u), g, 0.8);
        if (to < 0) to = roomFor(u, pk(u), g, 1);
        if (to < 0) to = firstEmpty();
        if (to === g) continue;
        move(u, to, t);
        n++;
      }
    }
    // Consolidation: empty the least loaded inference-only GPUs whose replicas all fit elsewhere.
    if (!consolidate) return n;
    const sources = [...byGpu.keys()].filter((g) => gTrain[g] === 0 && gInf[g]! > 0).sort((a, b) => gPeak[a]! - gPeak[b]!);
    const budget = Math.ceil(CONSOLIDATE_MAX_FRACTION * sources.length);
    let emptied = 0;
    for (const g of sources) {
      if (emptied >= budget) break;
      const list = (byGpu.get(g) ?? []).filter((u) => uGpu[u] === g);
      if (list.length === 0 || gInf[g] !== list.length || list.some((u) => dwelling(u, t))) continue;
      // Targets only below 80% of the packing line: a GPU just filled is not a source of the next relief.
      const plan: [number, number][] = [];
      const saved: [number, number, number][] = [];
      let ok = true;
      for (const u of list) {
        const k = roomFor(u, pk(u), g, 0.8);
        if (k < 0) { ok = false; break; }
        plan.push([u, k]);
        saved.push([k, gPeak[k]!, gMemUsed[k]!]);
        gPeak[k]! += pk(u) / gSpeed[k]!; gMemUsed[k]! += w.serviceMemGiB;
        touch(k);
      }
      for (let i = saved.length - 1; i >= 0; i--) { const [k, r, m] = saved[i]!; gPeak[k] = r; gMemUsed[k] = m; touch(k); }
      if (!ok) continue;
      for (const [u, k] of plan) { move(u, k, t); n++; }
      emptied++;
    }
    return n;
  };

  const reportEvery = Math.max(1, Math.floor(w.steps / 50));
  for (let t = 0; t < w.steps; t++) {
    // Departures: services (all their replicas) and finished training jobs.
    for (let i = activeS.length - 1; i >= 0; i--) {
      const s = activeS[i]!;
      if (S.end[s]! > t) continue;
      while (sUnits[s]! > 0) removeUnit(unitBase[s]! + --sUnits[s]!, t > 0 ? t - 1 : t);
      activeS[i] = activeS[activeS.length - 1]!; activeS.pop();
    }
    for (let i = activeT.length - 1; i >= 0; i--) {
      const j = activeT[i]!;
      if (tDone[j]! < 0) continue;
      const g = tGpu[j]!;
      gDemand[g]! -= T.demand[j]!; gMemUsed[g]! -= T.memoryGiB[j]!; gTrain[g]!--;
      if (place.inferenceUtil === 'mean') gUtil[g]! -= T.demand[j]!;
      if (gTrain[g] === 0) gDemand[g] = 0;
      activeT[i] = activeT[activeT.length - 1]!; activeT.pop();
      touch(g);
    }
    // Replica counts follow the load (surplus replicas stop now, missing ones are placed with the arrivals).
    for (let i = multi.length - 1; i >= 0; i--) {
      const s = multi[i]!;
      if (S.end[s]! <= t) { multi[i] = multi[multi.length - 1]!; multi.pop(); continue; }
      setReplicas(s, replicasFor(w.appLoad[S.app[s]!]![t]!), t > 0 ? t - 1 : t);
    }
    // Current inference load (and recent peak) per GPU.
    gRho.fill(0, 0, opened);
    for (const u of activeU) gRho[uGpu[u]!]! += loadOf(u, t) / gSpeed[uGpu[u]!]!;
    if (place.packByPeak) {
      gPeak.fill(0, 0, opened);
      for (const u of activeU) gPeak[uGpu[u]!]! += peakOf(u, t) / gSpeed[uGpu[u]!]!;
    }
    if (place.shareInference && (place.packByPeak || place.inferenceUtil === 'current')) infFit.rebuild(opened, infKey);
    if (place.rebalance) { room1.rebuild(opened, room1Key); room08.rebuild(opened, room08Key); }
    // Arrivals: missing replicas of running services, new services, training jobs.
    for (const s of multi) fillReplicas(s, t);
    while (nextS < nS && S.start[nextS]! <= t) {
      const s = nextS++;
      if (S.end[s]! <= t) continue;
      sRep[s] = replicasFor(w.appLoad[S.app[s]!]![t]!);
      activeS.push(s);
      if (unitBase[s + 1]! - unitBase[s]! > 1) multi.push(s);
      fillReplicas(s, t);
    }
    while (nextT < nT && T.arrival[jobOrder[nextT]!]! <= t) placeTraining(jobOrder[nextT++]!);
    // Moves started at this step: the old GPUs' state for the start-up (their load with the moved replicas).
    const pre = new Map<number, number>(); // old GPU -> extra load (busy fraction on it)
    for (const u of movedNow) {
      const from = uFrom[u]!;
      if (uGpu[u]! >= 0 && from >= 0 && from !== uGpu[u]) pre.set(from, (pre.get(from) ?? 0) + loadOf(u, t) / gSpeed[from]!);
    }
    for (const [g, extra] of pre) {
      const r = settler.settle(gType[g]!, gRho[g]! + extra, gTrain[g]! > 0 ? Math.min(1, gDemand[g]!) : 0);
      gPreBad[g] = r.p99Ms > INFERENCE.sloMs ? 1 : 0;
      gPreSpeed[g] = gTrain[g]! > 0 ? r.trainingSpeed : 1;
    }
    // Settle every GPU in use.
    let used = 0, inf = 0, train = 0;
    for (const g of pre.keys()) if (gInf[g] === 0 && gTrain[g] === 0) { used += startupF; held += startupF; }
    for (let g = 0; g < opened; g++) {
      if (gInf[g] === 0 && gTrain[g] === 0) continue;
      used++;
      if (gInf[g]! > 0) inf++; else train++;
      const r = place.law === 'alone' && gInf[g] === 0
        ? { p99Ms: 0, meanMs: 0, trainingSpeed: 1 }
        : settler.settle(gType[g]!, gRho[g]!, gInf[g]! > 0 ? Math.min(1, gDemand[g]!) : 0);
      gTrainSpeed[g] = gInf[g] === 0 ? 1 : r.trainingSpeed;
      if (pre.has(g) && gTrain[g]! > 0) gTrainSpeed[g] = startupF * gPreSpeed[g]! + (1 - startupF) * gTrainSpeed[g]!;
      gBad[g] = gInf[g]! > 0 && r.p99Ms > INFERENCE.sloMs ? 1 : 0;
      if (gInf[g]! > 0 && r.meanMs > INFERENCE.sloMs) gBad[g]! |= 2;
    }
    gpus[t] = used; infGpus[t] = inf; trainGpus[t] = train;
    // A service-step counts once; a replica on a violating GPU counts for its share of the requests.
    const inBurst = t >= burst0 && t < burst1;
    for (const u of activeU) {
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
      if (aloneSettler.settle(gType[g]!, loadOf(u, t) / gSpeed[g]!, 0).p99Ms <= INFERENCE.sloMs) violatedBeyond += share * bad;
    }
    for (const u of movedNow) uFrom[u] = -1;
    movedNow = [];
    // Training progress (work in reference-GPU seconds).
    for (const j of activeT) {
      const g = tGpu[j]!;
      const rate = gTrainSpeed[g]! * gSpeed[g]!;
      const need = T.workS[j]! - tProgress[j]!;
      if (rate * w.stepS >= need) { tDone[j] = t + need / (rate * w.stepS); tProgress[j] = T.workS[j]!; }
      else tProgress[j]! += rate * w.stepS;
    }
    if (place.rebalance) moves += rebalance(t);
    if (options.onProgress && t % reportEvery === 0) options.onProgress(t / w.steps);
  }
  options.onProgress?.(1);

  let jctSum = 0, finished = 0, jobs = 0;
  for (let j = 0; j < nT; j++) {
    if (T.arrival[j]! >= w.steps) continue;
    jobs++;
    const end = tDone[j]! >= 0 ? tDone[j]! + 1 : w.steps;
    if (tDone[j]! >= 0) finished++;
    jctSum += (end - T.arrival[j]!) * w.stepS;
  }
  const result = summarize(w, policy, gpus, {
    sloViolationRate: serviceSteps > 0 ? violated / serviceSteps : 0,
    sloViolationRateBeyondAlone: serviceSteps > 0 ? violatedBeyond / serviceSteps : 0,
    sloViolationRateBurst: burstSteps > 0 ? violatedBurst / burstSteps : 0,
    sloViolationRateMean: serviceSteps > 0 ? violatedMean / serviceSteps : 0,
    serviceSteps: Math.round(serviceSteps),
    gpusWithInferenceMean: infGpus.reduce((a, b) => a + b, 0) / Math.max(1, w.steps),
    gpusTrainingOnlyMean: trainGpus.reduce((a, b) => a + b, 0) / Math.max(1, w.steps),
    replicasPerService: serviceSteps > 0 ? replicaSteps / serviceSteps : 0,
    trainingJctMeanH: jobs > 0 ? jctSum / jobs / 3600 : 0,
    jobsFinished: finished,
    jobs,
    overflowGpus: Math.max(0, opened - nSlots),
    inferenceMoves: moves,
    inferenceMovesPerServiceDay: serviceSteps > 0 ? moves / (serviceSteps * w.stepS / 86400) : 0,
    inferenceMovesMaxPerServiceDay: [...sMoves.values()].reduce((a, b) => Math.max(a, b), 0),
    moveStartupS: place.rebalance ? startupS : 0,
    gpusHeldByMovesMean: held / Math.max(1, w.steps),
    slotOrder,
    packLine,
    wallMs: Date.now() - t0,
  });
  return { result, infGpus, trainGpus };
}

/** The trace's slots reordered: fastest type first (then more memory), each type's slots in trace order. */
export function fastestFirst(w: Workload): Uint8Array {
  const rank = w.types.map((_, i) => i).sort((a, b) => w.types[b]!.speed - w.types[a]!.speed || w.types[b]!.memoryGiB - w.types[a]!.memoryGiB || a - b);
  const out = new Uint8Array(w.slotType.length);
  let k = 0;
  for (const t of rank) for (let i = 0; i < w.slotType.length; i++) if (w.slotType[i] === t) out[k++] = t;
  return out;
}

/**
 * The load (busy fraction on the reference GPU) one replica may carry: the largest load whose p99 alone
 * meets the SLO on every GPU type (the slowest type binds), less one step of the settler's load grid so
 * the memoised answer (load rounded up) still meets it. A replica count chosen by it meets the SLO alone
 * wherever the replica lands.
 */
export function replicaCapacity(alone: Settler, speeds: readonly number[]): number {
  return Math.min(...speeds.map((v, i) => (alone.aloneCapacity(i, INFERENCE.sloMs) - RHO_GRID) * v));
}

function summarize(w: Workload, policy: FleetPolicy, gpus: Float64Array, rest: Omit<FleetResult, 'policy' | 'gpus' | 'gpusDailyMean' | 'gpusMean' | 'gpusPeak'>): FleetResult {
  const perDay = Math.round(86400 / w.stepS);
  const daily: number[] = [];
  for (let d = 0; d * perDay < w.steps; d++) {
    let s = 0, n = 0;
    for (let t = d * perDay; t < Math.min(w.steps, (d + 1) * perDay); t++) { s += gpus[t]!; n++; }
    daily.push(s / n);
  }
  const mean = gpus.reduce((a, b) => a + b, 0) / Math.max(1, gpus.length);
  return { policy, gpus, gpusDailyMean: daily, gpusMean: mean, gpusPeak: gpus.reduce((a, b) => Math.max(a, b), 0), ...rest };
}

/**
 * separate-5-1: inference and training in pools fixed at 5:1, one workload per GPU (the physics of
 * no-colocation); at each step the fleet is the smallest 5:1 split that holds both demands.
 */
function separate(w: Workload, raw: Raw): FleetResult {
  const gpus = new Float64Array(w.steps);
  for (let t = 0; t < w.steps; t++) gpus[t] = Math.max(Math.ceil((raw.infGpus[t]! * 6) / 5), raw.trainGpus[t]! * 6);
  const { policy: _p, gpus: _g, gpusDailyMean: _d, gpusMean: _m, gpusPeak: _k, ...rest } = raw.result;
  return summarize(w, 'separate-5-1', gpus, rest);
}
