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
 * Here: the policies, the options and the run's loop (simulateFleetRaw); the parts it calls live in
 * fleet-state.ts (the state), fleet-index.ts (first fit), fleet-place.ts (placement), fleet-tally.ts
 * (settling and counting) and fleet-moves.ts (the planner).
 */
import { loadProfile } from '../gpu/model/index.ts';
import { FitIndex } from './fleet-index.ts';
import { Planner } from './fleet-moves.ts';
import { Placer } from './fleet-place.ts';
import { FleetState, type FleetContext, type Placement } from './fleet-state.ts';
import { Tally } from './fleet-tally.ts';
import { RHO_GRID, Settler } from './settle.ts';
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

/**
 * Packing line and relief line of the planner, as fractions of the SLO the alone p99 may reach at a GPU's
 * packing figure (its replicas' recent peaks). 0.95 / 0.98: the fewest GPUs at violations under 0.1% of
 * the lines tried (0.7 / 0.85 to 0.95 / 0.98, bench/sim-fleet.ts --sweep).
 */
export const PACK_SLO_FRACTION = 0.95;
export const RELIEF_SLO_FRACTION = 0.98;
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
/**
 * One run of a policy: the context its options fix (runContext), then the steps, each in the order the file
 * comment gives: departures, replica counts, the measured load and arrivals (Placer, fleet-place.ts); the
 * GPUs settled and counted and training progressed (Tally, fleet-tally.ts); the planner's moves (Planner,
 * fleet-moves.ts). They share one FleetState (fleet-state.ts) and its first-fit indexes (FitIndex, fleet-index.ts).
 */
function simulateFleetRaw(w: Workload, policy: Exclude<FleetPolicy, 'separate-5-1'>, options: SimulateOptions): Raw {
  const t0 = Date.now();
  const { ctx, slotOrder, packLine, startupS } = runContext(w, policy, options);
  const st = new FleetState(ctx);
  const ix = new FitIndex(st), pl = new Placer(st, ix), planner = new Planner(st, ix, pl), tally = new Tally(st, planner);
  let moves = 0;
  const reportEvery = Math.max(1, Math.floor(w.steps / 50));
  for (let t = 0; t < w.steps; t++) {
    pl.departures(t);
    pl.resizeReplicas(t);
    pl.measureLoads(t);
    pl.arrivals(t);
    tally.step(t);
    if (ctx.place.rebalance) moves += planner.rebalance(t);
    if (options.onProgress && t % reportEvery === 0) options.onProgress(t / w.steps);
  }
  options.onProgress?.(1);

  const { jobs, finished, jctMeanH } = tally.jobs();
  const { serviceSteps, violated, violatedBeyond, violatedBurst, burstSteps, violatedMean, replicaSteps, infGpus, trainGpus } = tally;
  const result = summarize(w, policy, tally.gpus, {
    sloViolationRate: serviceSteps > 0 ? violated / serviceSteps : 0,
    sloViolationRateBeyondAlone: serviceSteps > 0 ? violatedBeyond / serviceSteps : 0,
    sloViolationRateBurst: burstSteps > 0 ? violatedBurst / burstSteps : 0,
    sloViolationRateMean: serviceSteps > 0 ? violatedMean / serviceSteps : 0,
    serviceSteps: Math.round(serviceSteps),
    gpusWithInferenceMean: infGpus.reduce((a, b) => a + b, 0) / Math.max(1, w.steps),
    gpusTrainingOnlyMean: trainGpus.reduce((a, b) => a + b, 0) / Math.max(1, w.steps),
    replicasPerService: serviceSteps > 0 ? replicaSteps / serviceSteps : 0,
    trainingJctMeanH: jctMeanH,
    jobsFinished: finished,
    jobs,
    overflowGpus: Math.max(0, st.opened - st.nSlots),
    inferenceMoves: moves,
    inferenceMovesPerServiceDay: serviceSteps > 0 ? moves / (serviceSteps * w.stepS / 86400) : 0,
    inferenceMovesMaxPerServiceDay: planner.maxPerServiceDay(),
    moveStartupS: ctx.place.rebalance ? startupS : 0,
    gpusHeldByMovesMean: tally.held / Math.max(1, w.steps),
    slotOrder,
    packLine,
    wallMs: Date.now() - t0,
  });
  return { result, infGpus, trainGpus };
}

/** What a run of `policy` fixes before its first step, the options checked. */
function runContext(w: Workload, policy: Exclude<FleetPolicy, 'separate-5-1'>, options: SimulateOptions): { ctx: FleetContext; slotOrder: SlotOrder; packLine: number | null; startupS: number } {
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
  const slotType = slotOrder === 'fastest-first' ? fastestFirst(w) : w.slotType;
  return { ctx: { w, place, settler, aloneSettler, speeds, capByType, reliefByType, utilCap, replicaLoad, slotType, startupF, dwellSteps }, slotOrder, packLine, startupS };
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
