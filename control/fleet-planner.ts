/**
 * The fleet's consolidation planner, pure: GPUs with their co-located workloads and measured load in, a
 * plan of moves out. It packs inference onto the fewest GPUs whose predicted tail latency stays inside a
 * band below the SLO, so whole GPUs come free, and in a burst moves load off any GPU that leaves the band,
 * claiming free GPUs back before the SLO breaks. Sort + first-fit decreasing over a mutable working copy,
 * O(GPUs x candidates) per round, so 10,000 GPUs plan in milliseconds.
 */

/** An inference service as the planner sees it. */
export interface PlannerService {
  id: string;
  /** Offered load now, batches per second. */
  rateRps: number;
  /** Cost of one batch alone on a reference GPU (capacity 1), ms. */
  serviceMs: number;
  sloMs: number;
  /** Measured p99 on its GPU now (0 when unknown). */
  p99Ms: number;
  memoryMiB: number;
}

/** A training job as the planner sees it: it takes what inference leaves, but wants at least `demand`. */
export interface PlannerTraining {
  id: string;
  memoryMiB: number;
  /** Fraction of the GPU (0-1) the job needs left over by inference to be worth running there. */
  demand: number;
}

export interface PlannerGpu {
  /** Fleet-unique id, `host/gpu`. */
  id: string;
  /** GPU type (model name): workloads move only between GPUs of one type. */
  type: string;
  /** Speed relative to the reference GPU the services' `serviceMs` were measured on. */
  capacity: number;
  memoryMiB: number;
  services: PlannerService[];
  trainings: PlannerTraining[];
  /** True while a move touching this GPU is in flight: it is neither a source nor a target. */
  pinned?: boolean;
}

export interface PlannerOptions {
  /** A target accepts load only while its effective utilisation stays at or below this. */
  packUtil: number;
  /** A GPU above this effective utilisation is relieved (moved off) at once. */
  unpackUtil: number;
  /** A target accepts load only while its predicted p99 stays at or below this fraction of its tightest SLO. */
  packSloFraction: number;
  /** A GPU whose predicted or measured p99 exceeds this fraction of its SLO is relieved. */
  unpackSloFraction: number;
  /** Inference slow-down reserved for a co-located training job the inner tier keeps throttled (I in 1/(1+I)); 0.3 packed too tightly in the demo. */
  trainingInterference: number;
  /** Queueing tail factor k in p99 = s * (1 + k * rho / (1 - rho)). */
  tailFactor: number;
  /** A GPU or workload touched less than this long ago is not consolidated again (ms). */
  minDwellMs: number;
  /** No consolidation for this long after a relief move (ms): a burst is not packed back mid-way. */
  calmAfterReliefMs: number;
  /** After a GPU changed, its measured p99 (a transient while the inner tier adapts) waits this long to count (ms). */
  settleMs: number;
  /** Cap on the moves in one plan. */
  maxMovesPerRound: number;
  /** Cap on the GPUs tried as consolidation sources in one round (the least loaded first). */
  maxDrainAttempts: number;
  maxTrainingsPerGpu: number;
}

export const FLEET_PLANNER_DEFAULTS: PlannerOptions = {
  packUtil: 0.5,
  unpackUtil: 0.72,
  packSloFraction: 0.45,
  unpackSloFraction: 0.8,
  trainingInterference: 0.5,
  tailFactor: 2,
  minDwellMs: 30_000,
  calmAfterReliefMs: 40_000,
  settleMs: 10_000,
  maxMovesPerRound: 64,
  maxDrainAttempts: 64,
  maxTrainingsPerGpu: 1,
};

/** Hysteresis memory carried from round to round (plain data). */
export interface PlannerState {
  /** When each workload (`service:<id>` / `training:<id>`) last moved. */
  lastMoveMs: Record<string, number>;
  /** When each GPU last gained or lost a workload. */
  lastChangeMs: Record<string, number>;
  /** When the last relief move was planned. */
  lastReliefMs: number;
}

export function initialPlannerState(): PlannerState {
  return { lastMoveMs: {}, lastChangeMs: {}, lastReliefMs: Number.NEGATIVE_INFINITY };
}

export type MoveReason = 'relief' | 'consolidate';

/** Move a workload: start it on `to`, then drain it from `from` (inference) or checkpoint it there (training). */
export interface Move {
  workload: 'service' | 'training';
  id: string;
  from: string;
  to: string;
  reason: MoveReason;
}

export interface GpuPrediction {
  /** Effective utilisation: inference load x (1 + reserved training interference) / capacity. */
  util: number;
  /** Predicted p99 of the GPU's slowest batch, ms (Infinity when saturated). */
  p99Ms: number;
  /** Tightest SLO on the GPU (Infinity with no service). */
  sloMs: number;
}

export interface FleetPlan {
  moves: Move[];
  gpusTotal: number;
  /** GPUs carrying any workload before / after the plan. */
  gpusInUseBefore: number;
  gpusInUse: number;
  gpusFreed: number;
  /** GPUs this plan empties. */
  freed: string[];
  /** Empty GPUs this plan puts work on again. */
  claimed: string[];
  /** GPUs above the unpack band before the plan. */
  overloaded: string[];
  /** GPUs above the band the plan could not relieve (no target fits). */
  unrelieved: string[];
  state: PlannerState;
}

interface Work {
  gpu: PlannerGpu;
  services: PlannerService[];
  trainings: PlannerTraining[];
  /** Inference load (sum of rate x serviceMs / 1000), before capacity and training reserve. */
  load: number;
  memoryMiB: number;
  maxServiceMs: number;
  minSloMs: number;
  /** True when the GPU must not be a target this round. */
  closed: boolean;
}

const key = (w: 'service' | 'training', id: string) => `${w}:${id}`;
const serviceLoad = (s: PlannerService) => (Math.max(0, s.rateRps) * Math.max(0, s.serviceMs)) / 1000;

/** Predicted effective utilisation and p99 of a set of services on one GPU (the per-GPU load model). */
export function predictGpu(
  load: number, maxServiceMs: number, minSloMs: number, hasTraining: boolean, capacity: number, o: Pick<PlannerOptions, 'trainingInterference' | 'tailFactor'>,
): GpuPrediction {
  const inflation = hasTraining ? 1 + o.trainingInterference : 1;
  const util = (load * inflation) / capacity;
  const s = (maxServiceMs * inflation) / capacity;
  const p99Ms = util >= 1 ? Number.POSITIVE_INFINITY : s * (1 + (o.tailFactor * util) / (1 - util));
  return { util, p99Ms, sloMs: minSloMs };
}

function predict(w: Work, o: PlannerOptions): GpuPrediction {
  return predictGpu(w.load, w.maxServiceMs, w.minSloMs, w.trainings.length > 0, w.gpu.capacity, o);
}

function inUse(w: Work): boolean {
  return w.services.length > 0 || w.trainings.length > 0;
}

function refresh(w: Work): void {
  w.load = 0; w.memoryMiB = 0; w.maxServiceMs = 0; w.minSloMs = Number.POSITIVE_INFINITY;
  for (const s of w.services) {
    w.load += serviceLoad(s);
    w.memoryMiB += s.memoryMiB;
    w.maxServiceMs = Math.max(w.maxServiceMs, s.serviceMs);
    w.minSloMs = Math.min(w.minSloMs, s.sloMs);
  }
  for (const t of w.trainings) w.memoryMiB += t.memoryMiB;
}

/**
 * True when the GPU is above the unpack band, by the model or by its measured p99. Beside a training job the
 * inner tier spends the headroom on purpose (p99 sits just under the SLO), so there only a measured p99
 * over the SLO itself counts; on an inference-only GPU the p99 is load alone, and the band applies.
 */
function overloaded(w: Work, o: PlannerOptions, settling = false): boolean {
  if (w.services.length === 0) return false;
  const p = predict(w, o);
  if (p.util > o.unpackUtil || p.p99Ms > o.unpackSloFraction * p.sloMs) return true;
  if (settling) return false;
  const fraction = w.trainings.length > 0 ? 1 : o.unpackSloFraction;
  return w.services.some((s) => s.p99Ms > fraction * s.sloMs);
}

/**
 * True when `t` can take a service (or a training job) and stay inside the pack band; `relaxed`: under
 * the unpack band only (relief's last resort: a free GPU for a service too big for the pack band alone).
 */
function fits(t: Work, o: PlannerOptions, svc?: PlannerService, job?: PlannerTraining, relaxed = false): boolean {
  if (t.closed) return false;
  const memory = t.memoryMiB + (svc?.memoryMiB ?? 0) + (job?.memoryMiB ?? 0);
  if (memory > t.gpu.memoryMiB) return false;
  if (svc && t.services.some((s) => s.id === svc.id)) return false;
  if (job && (t.trainings.length >= o.maxTrainingsPerGpu || t.trainings.some((x) => x.id === job.id))) return false;
  const load = t.load + (svc ? serviceLoad(svc) : 0);
  const hasTraining = t.trainings.length > 0 || job !== undefined;
  const maxMs = Math.max(t.maxServiceMs, svc?.serviceMs ?? 0);
  const minSlo = Math.min(t.minSloMs, svc?.sloMs ?? Number.POSITIVE_INFINITY);
  if (load > 0) {
    const p = predictGpu(load, maxMs, minSlo, hasTraining, t.gpu.capacity, o);
    const util = relaxed ? o.unpackUtil : o.packUtil;
    const slo = relaxed ? o.unpackSloFraction : o.packSloFraction;
    if (p.util > util || p.p99Ms > slo * minSlo) return false;
    if (hasTraining) {
      const demand = Math.max(job?.demand ?? 0, ...t.trainings.map((x) => x.demand));
      if (1 - p.util < demand) return false;
    }
  }
  return true;
}

/**
 * First fit over the in-use GPUs in decreasing load (sorted once per phase, so about the best fit: the
 * most loaded GPU that still takes the workload inside the band); the scan stops at the first that fits.
 */
function bestTarget(byLoad: Work[], from: Work, o: PlannerOptions, svc?: PlannerService, job?: PlannerTraining, exclude?: Set<Work>): Work | undefined {
  for (const t of byLoad) {
    if (t === from || !inUse(t) || t.gpu.type !== from.gpu.type || exclude?.has(t)) continue;
    if (fits(t, o, svc, job)) return t;
  }
  return undefined;
}

function byLoadDesc(works: Work[]): Work[] {
  return works.filter(inUse).sort((a, b) => b.load / b.gpu.capacity - a.load / a.gpu.capacity);
}

/** A free GPU of the source's type that fits, preferring the source's host (`host/` prefix). */
function freeTarget(works: Work[], from: Work, o: PlannerOptions, svc?: PlannerService, job?: PlannerTraining): Work | undefined {
  const host = from.gpu.id.slice(0, from.gpu.id.lastIndexOf('/') + 1);
  for (const relaxed of [false, true]) {
    let other: Work | undefined;
    for (const t of works) {
      if (t === from || inUse(t) || t.gpu.type !== from.gpu.type || !fits(t, o, svc, job, relaxed)) continue;
      if (host && t.gpu.id.startsWith(host)) return t;
      other ??= t;
    }
    if (other) return other;
  }
  return undefined;
}

function moveService(from: Work, to: Work, svc: PlannerService): void {
  from.services = from.services.filter((s) => s !== svc);
  to.services = [...to.services, svc];
  refresh(from);
  refresh(to);
}

function moveTraining(from: Work, to: Work, job: PlannerTraining): void {
  from.trainings = from.trainings.filter((t) => t !== job);
  to.trainings = [...to.trainings, job];
  refresh(from);
  refresh(to);
}

/**
 * One planning round. Relief first: every GPU above the unpack band sheds its largest services (or, with a
 * single service left, its training job) to the most loaded GPU that stays inside the pack band, else to a
 * free GPU (claimed). Only when nothing needed relief for `calmAfterReliefMs` does it consolidate: the
 * least loaded GPUs whose workloads all fit elsewhere inside the pack band are emptied (freed). The gap
 * between the bands and the dwell times are the hysteresis that keeps plans from flapping.
 */
export function planFleet(gpus: readonly PlannerGpu[], state: PlannerState, nowMs: number, options: Partial<PlannerOptions> = {}): FleetPlan {
  const o: PlannerOptions = { ...FLEET_PLANNER_DEFAULTS, ...options };
  const works: Work[] = gpus.map((g) => {
    const w: Work = { gpu: g, services: g.services, trainings: g.trainings, load: 0, memoryMiB: 0, maxServiceMs: 0, minSloMs: Infinity, closed: g.pinned === true };
    refresh(w);
    return w;
  });
  const wasInUse = new Set(works.filter(inUse).map((w) => w.gpu.id));
  const moves: Move[] = [];
  const next: PlannerState = { lastMoveMs: { ...state.lastMoveMs }, lastChangeMs: { ...state.lastChangeMs }, lastReliefMs: state.lastReliefMs };
  const record = (m: Move) => {
    moves.push(m);
    next.lastMoveMs[key(m.workload, m.id)] = nowMs;
    next.lastChangeMs[m.from] = nowMs;
    next.lastChangeMs[m.to] = nowMs;
    if (m.reason === 'relief') next.lastReliefMs = nowMs;
  };

  // Relief: the burst path. No dwell applies: latency is the guarantee.
  const settling = (w: Work) => nowMs - (state.lastChangeMs[w.gpu.id] ?? Number.NEGATIVE_INFINITY) < o.settleMs;
  const hot = works.filter((w) => !w.gpu.pinned && overloaded(w, o, settling(w))).sort((a, b) => predict(b, o).util - predict(a, o).util);
  const overloadedIds = hot.map((w) => w.gpu.id);
  const unrelieved: string[] = [];
  const reliefTargets = hot.length ? byLoadDesc(works) : [];
  for (const w of hot) {
    while (overloaded(w, o, settling(w)) && moves.length < o.maxMovesPerRound) {
      let moved = false;
      if (w.services.length > 1) {
        // Largest first: the fewest moves that bring the GPU back under the band.
        for (const svc of [...w.services].sort((a, b) => serviceLoad(b) - serviceLoad(a))) {
          const to = bestTarget(reliefTargets, w, o, svc) ?? freeTarget(works, w, o, svc);
          if (!to) continue;
          moveService(w, to, svc);
          record({ workload: 'service', id: svc.id, from: w.gpu.id, to: to.gpu.id, reason: 'relief' });
          moved = true;
          break;
        }
      }
      if (!moved && w.trainings.length > 0) {
        const job = w.trainings[0]!;
        const to = bestTarget(reliefTargets, w, o, undefined, job) ?? freeTarget(works, w, o, undefined, job);
        if (to) {
          moveTraining(w, to, job);
          record({ workload: 'training', id: job.id, from: w.gpu.id, to: to.gpu.id, reason: 'relief' });
          moved = true;
        }
      }
      if (!moved) break;
    }
    if (overloaded(w, o, settling(w))) unrelieved.push(w.gpu.id);
    w.closed = true; // a relieved GPU takes nothing more this round
  }

  // Consolidation: the calm path.
  const calm = hot.length === 0 && nowMs - next.lastReliefMs >= o.calmAfterReliefMs;
  if (calm) {
    const settled = (w: Work) =>
      nowMs - (next.lastChangeMs[w.gpu.id] ?? Number.NEGATIVE_INFINITY) >= o.minDwellMs &&
      w.services.every((s) => nowMs - (next.lastMoveMs[key('service', s.id)] ?? Number.NEGATIVE_INFINITY) >= o.minDwellMs) &&
      w.trainings.every((t) => nowMs - (next.lastMoveMs[key('training', t.id)] ?? Number.NEGATIVE_INFINITY) >= o.minDwellMs);
    const sources = works
      .filter((w) => inUse(w) && !w.gpu.pinned && settled(w))
      .sort((a, b) => a.load / a.gpu.capacity - b.load / b.gpu.capacity || a.trainings.length - b.trainings.length)
      .slice(0, o.maxDrainAttempts);
    const emptied = new Set<Work>();
    const targets = byLoadDesc(works);
    for (const src of sources) {
      const n = src.services.length + src.trainings.length;
      if (moves.length + n > o.maxMovesPerRound) break;
      // A GPU that took load this round stays put: it is a target now, not a source.
      if (emptied.has(src) || !inUse(src) || next.lastChangeMs[src.gpu.id] === nowMs) continue;
      // Trial placement on the working copy; undone unless every workload fits.
      const trial: Array<{ to: Work; svc?: PlannerService; job?: PlannerTraining }> = [];
      src.closed = true;
      let ok = true;
      for (const job of [...src.trainings]) {
        const to = bestTarget(targets, src, o, undefined, job, emptied);
        if (!to) { ok = false; break; }
        moveTraining(src, to, job);
        trial.push({ to, job });
      }
      if (ok) {
        for (const svc of [...src.services].sort((a, b) => serviceLoad(b) - serviceLoad(a))) {
          const to = bestTarget(targets, src, o, svc, undefined, emptied);
          if (!to) { ok = false; break; }
          moveService(src, to, svc);
          trial.push({ to, svc });
        }
      }
      if (!ok) {
        for (const t of trial.reverse()) {
          if (t.svc) moveService(t.to, src, t.svc);
          else moveTraining(t.to, src, t.job!);
        }
        src.closed = src.gpu.pinned === true;
        continue;
      }
      emptied.add(src);
      for (const t of trial) {
        if (t.svc) record({ workload: 'service', id: t.svc.id, from: src.gpu.id, to: t.to.gpu.id, reason: 'consolidate' });
        else record({ workload: 'training', id: t.job!.id, from: src.gpu.id, to: t.to.gpu.id, reason: 'consolidate' });
      }
    }
  }

  const nowInUse = works.filter(inUse);
  const nowIds = new Set(nowInUse.map((w) => w.gpu.id));
  return {
    moves,
    gpusTotal: works.length,
    gpusInUseBefore: wasInUse.size,
    gpusInUse: nowInUse.length,
    gpusFreed: works.length - nowInUse.length,
    freed: [...wasInUse].filter((id) => !nowIds.has(id)),
    claimed: [...nowIds].filter((id) => !wasInUse.has(id)),
    overloaded: overloadedIds,
    unrelieved,
    state: next,
  };
}
