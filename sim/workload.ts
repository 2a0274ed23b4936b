/**
 * The 57-day workload, built (seeded, deterministic) from the real traces in FleetData. A composite of
 * real parts, not the paper's PAI v2020 job table (not publicly reachable); sim/README.md explains each
 * choice. Time is in steps of `stepS` seconds.
 */
import { Rng, deriveSeed } from '../gpu/model/index.ts';
import type { FleetData } from './data.ts';

/** Published specs per v2020 gpu_type: FP32 throughput relative to a V100 (15.7 TFLOPS) and memory. */
export const GPU_SPECS: Record<string, { speed: number; memoryGiB: number; note: string }> = {
  V100: { speed: 1, memoryGiB: 16, note: 'NVIDIA V100 16 GB, 15.7 TFLOPS FP32' },
  V100M32: { speed: 1, memoryGiB: 32, note: 'NVIDIA V100 32 GB' },
  P100: { speed: 0.59, memoryGiB: 16, note: 'NVIDIA P100 16 GB, 9.3 TFLOPS FP32' },
  T4: { speed: 0.52, memoryGiB: 16, note: 'NVIDIA T4 16 GB, 8.1 TFLOPS FP32' },
  MISC: { speed: 0.59, memoryGiB: 16, note: 'unnamed older GPUs in the trace: assumed P100-class' },
};

export interface WorkloadOptions {
  days: number;
  seed: number;
  /** Step length, s (default 600: the ServeGen window). */
  stepS?: number;
  /** Multiplies the fleet inventory and the number of services and jobs (bench: 4x). Default 1. */
  scale?: number;
  /** The window of appRecentPeak, s (default 24 h): what gpucolo's planner packs by. */
  peakWindowS?: number;
  /**
   * Claim-back before bursts: when > 0, what gpucolo packs by also covers the load the service had over the
   * next this-many seconds one day earlier (yesterday's curve from now on: history only). Default
   * FORECAST_S (2 h); 0 turns it off. With the default 24 h window it adds nothing (yesterday is in the window).
   */
  forecastS?: number;
  /** GPU memory per inference replica, GiB (default INFERENCE.memoryGiB; a modelling choice, see sim/README.md). */
  serviceMemGiB?: number;
  /** GPU memory of a training job = demand x this, GiB (default TRAINING_MEM_GIB_PER_GPU; a modelling choice). */
  jobMemGiBPerGpu?: number;
}

/** Inference: every service is ResNet-50 at batch 2 on the profile's GPU with the control bench's 25 ms SLO. */
export const INFERENCE = { batch: 2, sloMs: 25, memoryGiB: 2 } as const;
/** Training jobs: v2023 best-effort pods with one GPU that live at least this long. */
export const TRAINING_MIN_DURATION_S = 1800;
/** A training job's GPU memory is its gpu_milli share of a 16 GiB GPU (invented: the traces carry no GPU memory). */
export const TRAINING_MEM_GIB_PER_GPU = 16;
/** Claim-back horizon: gpucolo packs by at least yesterday's load over the next 2 h (see forecastS). */
export const FORECAST_S = 7200;
/** Inference:training at the start (the paper's 3:1). */
export const INFERENCE_PER_TRAINING = 3;
/** Inference doubled on these days (the paper's burst). */
export const BURST_DAYS: readonly [number, number] = [20, 40];
/** A ServeGen client's curve is a service's curve only if it sends in >= 90% of windows and never > 10x its mean. */
export const SERVEGEN_DENSE = 0.9;
export const SERVEGEN_MAX_PEAK = 10;

export interface GpuType { name: string; speed: number; memoryGiB: number; gpus: number }

export interface Workload {
  days: number;
  seed: number;
  stepS: number;
  steps: number;
  /** GPU memory per inference replica, GiB. */
  serviceMemGiB: number;
  types: GpuType[];
  /** Type index of fleet GPU slot k (slot k >= length reuses slot k mod length). */
  slotType: Uint8Array;
  /** Load curves, one per app: busy fraction on the reference GPU at each step. */
  appLoad: Float32Array[];
  /** Per app: its load's 99th percentile over the run (what a conservative placement plans for). */
  appPlanLoad: Float32Array;
  /** Per app: its mean load (the figure a utilisation-based table records). */
  appMeanLoad: Float32Array;
  /** Per app and step: the highest load of the last peakWindowS (default 1 h) up to and including the step (known at the step). */
  appRecentPeak: Float32Array[];
  services: { app: Int32Array; start: Int32Array; end: Int32Array; burstTwin: Uint8Array };
  trainings: { arrival: Int32Array; workS: Float64Array; demand: Float32Array; memoryGiB: Float32Array };
  /** Training jobs already running at time 0 (the first entries of `trainings`). */
  initialJobs: number;
  sources: string[];
}

function shuffle<T>(a: T[], rng: Rng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Builds the workload: fleet, services with churn and curves, training arrivals. */
export function buildWorkload(data: FleetData, o: WorkloadOptions): Workload {
  const stepS = o.stepS ?? 600;
  const scale = o.scale ?? 1;
  const steps = Math.round((o.days * 86400) / stepS);
  const rng = (stream: number) => new Rng(deriveSeed(o.seed, stream));

  // Fleet: the v2020 inventory, each GPU a slot, in a seeded random order.
  const types: GpuType[] = data.gpuTypes.map((t) => {
    const spec = GPU_SPECS[t.type] ?? { speed: 0.59, memoryGiB: 16 };
    return { name: t.type, speed: spec.speed, memoryGiB: spec.memoryGiB, gpus: t.gpus * scale };
  });
  const slots: number[] = [];
  types.forEach((t, i) => { for (let k = 0; k < t.gpus; k++) slots.push(i); });
  const slotType = Uint8Array.from(shuffle(slots, rng(1)));

  // Curves: dense ServeGen clients (14 days, tiled) and the GenAI daily cycle (22.3 h stretched to 24 h).
  const sg = data.servegen;
  const dense = sg.clients.filter((c) => {
    let nz = 0, mx = 0;
    for (const v of c) { if (v > 0) nz++; if (v > mx) mx = v; }
    return nz >= SERVEGEN_DENSE * c.length && mx <= SERVEGEN_MAX_PEAK;
  });
  if (dense.length === 0) throw new RangeError('no ServeGen client curve qualifies');
  const sgStep = sg.tS.length > 1 ? sg.tS[1]! - sg.tS[0]! : 600;
  const sgPeriodS = sgStep * sg.tS.length;
  const g = data.genaiCycle;
  const gMean = g.reduce((s, r) => s + r.qps, 0) / g.length;
  const gSpanS = (g[g.length - 1]!.tS - g[0]!.tS) + 600;
  const genaiAt = (tS: number) => {
    const x = ((((tS % 86400) + 86400) % 86400) / 86400) * gSpanS;
    const i = Math.min(g.length - 1, Math.floor(x / 600));
    return g[i]!.qps / gMean;
  };

  // Apps: each DLRM app gets a measured inference GPU utilisation (GenAI duty cycle, nonzero pods) and a curve.
  const duty = data.inferenceDuty.filter((d) => d.meanPct > 0);
  if (duty.length === 0) throw new RangeError('no inference pod with nonzero utilisation');
  const apps = [...new Set(data.dlrm.map((d) => d.app))].sort((a, b) => a - b);
  const appIndex = new Map(apps.map((a, i) => [a, i]));
  const appLoad: Float32Array[] = [];
  const appPlanLoad = new Float32Array(apps.length);
  const appMeanLoad = new Float32Array(apps.length);
  const ar = rng(2);
  for (let a = 0; a < apps.length; a++) {
    const util = duty[Math.floor(ar.next() * duty.length)]!.meanPct / 100;
    const useServegen = ar.next() < 0.5;
    const client = dense[Math.floor(ar.next() * dense.length)]!;
    const offsetS = useServegen ? Math.floor(ar.next() * sg.tS.length) * sgStep : (ar.next() - 0.5) * 7200;
    const curve = new Float32Array(steps);
    for (let t = 0; t < steps; t++) {
      const tS = t * stepS + offsetS;
      const c = useServegen ? client[Math.floor((tS % sgPeriodS) / sgStep)]! : genaiAt(tS);
      curve[t] = util * c;
    }
    const sorted = Float32Array.from(curve).sort();
    appPlanLoad[a] = sorted[Math.min(steps - 1, Math.floor(0.99 * steps))]!;
    appMeanLoad[a] = curve.reduce((s, v) => s + v, 0) / steps;
    appLoad.push(curve);
  }
  const window = Math.max(1, Math.round((o.peakWindowS ?? 3600) / stepS));
  const day = Math.round(86400 / stepS);
  const ahead = Math.min(day - 1, Math.round((o.forecastS ?? FORECAST_S) / stepS));
  const trailingMax = (curve: Float32Array, window: number) => {
    // Sliding-window maximum with a monotonic deque of step indices.
    const out = new Float32Array(steps);
    const dq = new Int32Array(steps);
    let head = 0, tail = 0;
    for (let t = 0; t < steps; t++) {
      while (tail > head && curve[dq[tail - 1]!]! <= curve[t]!) tail--;
      dq[tail++] = t;
      if (dq[head]! <= t - window) head++;
      out[t] = curve[dq[head]!]!;
    }
    return out;
  };
  const appRecentPeak = appLoad.map((curve) => {
    const out = trailingMax(curve, window);
    if (ahead > 0) {
      // Yesterday's highest load over [t + 1, t + ahead]: the trailing max of window `ahead` at t - day + ahead.
      const y = trailingMax(curve, ahead);
      for (let t = day - ahead; t < steps; t++) out[t] = Math.max(out[t]!, y[t - day + ahead]!);
    }
    return out;
  });

  // Services: DLRM GPU instances, their 31-day churn replayed back to back; doubled on the burst days.
  const traceS = Math.max(...data.dlrm.flatMap((d) => [d.creationS, d.deletionS]).filter(Number.isFinite));
  const horizonS = steps * stepS;
  const sApp: number[] = [], sStart: number[] = [], sEnd: number[] = [], sTwin: number[] = [];
  const add = (app: number, s0: number, s1: number, twin: number) => {
    const a = Math.max(0, Math.floor(s0 / stepS)), b = Math.min(steps, Math.ceil(s1 / stepS));
    if (b > a) { sApp.push(app); sStart.push(a); sEnd.push(b); sTwin.push(twin); }
  };
  const [b0, b1] = [BURST_DAYS[0] * 86400, BURST_DAYS[1] * 86400];
  for (let k = 0; k < scale; k++) {
    for (let rep = 0; rep * traceS < horizonS; rep++) {
      for (const d of data.dlrm) {
        const app = appIndex.get(d.app)!;
        // An instance still alive when the trace ends lives on; in later replays, the instances alive
        // before the trace began are left out: the survivors of the previous replay stand in for them.
        const s0 = Number.isFinite(d.creationS) ? rep * traceS + d.creationS : rep === 0 ? 0 : NaN;
        if (!Number.isFinite(s0)) continue;
        const end = Number.isFinite(d.deletionS) ? rep * traceS + d.deletionS : Infinity;
        for (let gi = 0; gi < d.gpus; gi++) {
          add(app, s0, Math.min(end, horizonS), 0);
          const t0 = Math.max(s0, b0), t1 = Math.min(end, b1, horizonS);
          if (t1 > t0) add(app, t0, t1, 1);
        }
      }
    }
  }
  // Training: v2023 best-effort single-GPU pods that run >= 30 min; Poisson arrivals keeping 1 job per
  // INFERENCE_PER_TRAINING services at the start, plus that population already running at time 0.
  const shapes = data.podShapes.filter((p) => p.qos === 'BE' && p.numGpu === 1 && p.durationS >= TRAINING_MIN_DURATION_S && p.gpuMilli > 0);
  if (shapes.length === 0) throw new RangeError('no training pod shapes');
  const meanDurS = shapes.reduce((s, p) => s + p.durationS, 0) / shapes.length;
  const initialServices = sStart.filter((s) => s === 0).length;
  const population = initialServices / INFERENCE_PER_TRAINING;
  const tr = rng(3);
  const tArr: number[] = [], tWork: number[] = [], tDemand: number[] = [], tMem: number[] = [];
  const job = (arrivalS: number, fraction: number) => {
    const p = shapes[Math.floor(tr.next() * shapes.length)]!;
    const demand = Math.min(1, p.gpuMilli / 1000);
    tArr.push(Math.floor(arrivalS / stepS));
    tWork.push(Math.max(stepS, p.durationS * fraction));
    tDemand.push(demand);
    tMem.push(Math.max(1, demand * (o.jobMemGiBPerGpu ?? TRAINING_MEM_GIB_PER_GPU)));
  };
  const initialJobs = Math.round(population);
  for (let i = 0; i < initialJobs; i++) job(0, tr.next());
  const ratePerS = population / meanDurS;
  for (let tS = tr.exponential(1 / ratePerS); tS < horizonS; tS += tr.exponential(1 / ratePerS)) job(tS, 1);

  const order = sStart.map((_, i) => i).sort((a, b) => sStart[a]! - sStart[b]! || a - b);
  return {
    days: o.days, seed: o.seed, stepS, steps, serviceMemGiB: o.serviceMemGiB ?? INFERENCE.memoryGiB, types, slotType, appLoad, appPlanLoad, appMeanLoad, appRecentPeak,
    services: {
      app: Int32Array.from(order.map((i) => sApp[i]!)), start: Int32Array.from(order.map((i) => sStart[i]!)),
      end: Int32Array.from(order.map((i) => sEnd[i]!)), burstTwin: Uint8Array.from(order.map((i) => sTwin[i]!)),
    },
    initialJobs,
    trainings: { arrival: Int32Array.from(tArr), workS: Float64Array.from(tWork), demand: Float32Array.from(tDemand), memoryGiB: Float32Array.from(tMem) },
    sources: [
      `fleet: ${data.dir}/pai-v2020-gpu-types.csv (alibaba/clusterdata v2020 pai_machine_spec: ${types.reduce((s, t) => s + t.gpus, 0)} GPUs of ${types.length} types)`,
      `inference churn: dlrm-gpu-instances.csv (v2025 DLRM, ${data.dlrm.length} GPU instances of ${apps.length} apps, 31 days replayed back to back; doubled on days ${BURST_DAYS[0]}-${BURST_DAYS[1]})`,
      `inference utilisation: genai-inference-gpu-duty.csv (v2026 GenAI, ${duty.length} inference pods' mean GPU duty cycle)`,
      `inference rate curves: servegen-m-large-clients.csv (${dense.length} dense ServeGen clients) and genai-qps-cycle.csv (GenAI daily QPS cycle)`,
      `training jobs: openb-pod-shapes.csv (v2023 openb, ${shapes.length} best-effort 1-GPU pods >= ${TRAINING_MIN_DURATION_S / 60} min: gpu_milli, duration)`,
    ],
  };
}
