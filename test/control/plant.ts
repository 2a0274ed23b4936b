/**
 * A small GPU plant for the control tests and a driver that runs a policy against it like the GPU actor would:
 * inner() every innerPeriodMs with the last window, outer() every outerPeriodMs with windows merged per service,
 * and a training restart (no training for restartMs) after every MPS change.
 *
 * Per-request latency of service i:
 *   base_i * (1 + loadCoef_i * felt_i / 100) * (1 + k * pressure) * lognormal(sigma)
 * where felt_i is the offered rate through a first-order lag of lagMs (queues take time to build)
 * where pressure = (1 - duty) * share / 100 while training runs, 0 while it restarts or is stopped.
 * Per-iteration sleep is turned into a duty with the training iteration time.
 */
import { mergeWindowsByService, summarize } from '../../control/window.ts';
import type { Decision, Knobs, LatencyWindow, Policy } from '../../control/types.ts';
import { Rng } from '../../gpu/model/index.ts';

/** The simulated GPU's seeded PRNG (gpu/model, mulberry32) as a function: uniform in [0, 1). */
export function prng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Standard normal by Box-Muller. */
export function gauss(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Poisson sample (Knuth for small means, normal approximation above 50). */
export function poisson(rand: () => number, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * gauss(rand)));
  const l = Math.exp(-mean);
  let k = 0;
  let p = 1;
  do {
    k++;
    p *= rand();
  } while (p > l);
  return k - 1;
}

export interface ServiceSpec {
  id: string;
  sloMs: number;
  baseMs: number;
  loadCoef: number;
  /** Offered load (rps) at time t. */
  rate: (tMs: number) => number;
}

export interface PlantSpec {
  services: ServiceSpec[];
  /** Interference strength of training at full pressure. */
  k: number;
  sigma: number;
  restartMs: number;
  /** Training iteration time, for per-iteration sleep. */
  iterMs: number;
  /** Queues take time to build: latency follows the offered rate through a first-order lag (0 = at once). */
  lagMs: number;
  seed: number;
}

export const defaultPlant = (over: Partial<PlantSpec> = {}): PlantSpec => ({
  services: [{ id: 'svc', sloMs: 90, baseMs: 25, loadCoef: 0.5, rate: () => 100 }],
  k: 2,
  sigma: 0.05,
  restartMs: 7_000,
  iterMs: 600,
  lagMs: 0,
  seed: 1,
  ...over,
});

/** Effective duty of a pacing setting. */
export function effectiveDuty(knobs: Knobs, iterMs: number): number {
  const p = knobs.pacing;
  return p.mode === 'duty' ? p.duty : p.sleepMs / (p.sleepMs + iterMs);
}

/** Noise-free mean latency of a service under the given knobs and rate (the plant's "truth"). */
export function plantMeanMs(spec: PlantSpec, svc: ServiceSpec, knobs: Knobs, rate: number, training: boolean): number {
  const pressure = training && knobs.trainingRunning ? (1 - effectiveDuty(knobs, spec.iterMs)) * (knobs.mpsSharePct / 100) : 0;
  return svc.baseMs * (1 + (svc.loadCoef * rate) / 100) * (1 + spec.k * pressure);
}

export interface Tick {
  tMs: number;
  knobs: Knobs;
  windows: LatencyWindow[];
  trainingRunning: boolean;
  decisions: Decision[];
}

export interface RunResult {
  ticks: Tick[];
  decisions: Decision[];
  /** Decisions with the time they were taken. */
  timeline: { tMs: number; d: Decision }[];
  finalKnobs: Knobs;
  finalState: unknown;
}

export interface RunOptions {
  durationMs: number;
  /** Start from these knobs/state instead of the policy's initial ones. */
  knobs?: Knobs;
  state?: unknown;
  /** Skip outer calls (inner tier alone). */
  innerOnly?: boolean;
}

/** Run `policy` against the plant for durationMs; returns every window and decision. */
export function simulate(policy: Policy, spec: PlantSpec, run: RunOptions): RunResult {
  const rand = prng(spec.seed);
  let knobs = run.knobs ?? policy.initialKnobs();
  let state = run.state ?? policy.initialState();
  let restartUntil = -Infinity;
  const ticks: Tick[] = [];
  const timeline: { tMs: number; d: Decision }[] = [];
  let pending: LatencyWindow[] = [];
  let nextOuter = policy.outerPeriodMs;
  const dt = policy.innerPeriodMs;
  const felt = spec.services.map((svc) => svc.rate(0));
  const follow = spec.lagMs > 0 ? 1 - Math.exp(-dt / spec.lagMs) : 1;
  for (let t = 0; t + dt <= run.durationMs; t += dt) {
    const now = t + dt;
    const training = t >= restartUntil;
    const windows = spec.services.map((svc, i) => {
      const rate = svc.rate(t);
      felt[i]! += follow * (rate - felt[i]!);
      const n = poisson(rand, (rate * dt) / 1000);
      const mean = plantMeanMs(spec, svc, knobs, felt[i]!, training);
      const lat: number[] = [];
      for (let i = 0; i < n; i++) lat.push(mean * Math.exp(spec.sigma * gauss(rand) - (spec.sigma * spec.sigma) / 2));
      return summarize(svc.id, svc.sloMs, lat, n, dt);
    });
    pending.push(...windows);
    const trainings = [{ jobId: 'train', itersPerSec: 1, running: training && knobs.trainingRunning }];
    const decisions: Decision[] = [];
    const apply = (r: { state: unknown; knobs: Knobs; decisions: Decision[] }) => {
      if (r.knobs.mpsSharePct !== knobs.mpsSharePct) restartUntil = now + spec.restartMs;
      state = r.state;
      knobs = r.knobs;
      decisions.push(...r.decisions);
      for (const d of r.decisions) timeline.push({ tMs: now, d });
    };
    apply(policy.inner(state, { nowMs: now, services: windows, trainings, knobs }));
    if (!run.innerOnly && now >= nextOuter) {
      nextOuter += policy.outerPeriodMs;
      const merged = mergeWindowsByService(pending);
      pending = [];
      const running = now >= restartUntil && knobs.trainingRunning;
      apply(policy.outer(state, { nowMs: now, services: merged, trainings: [{ jobId: 'train', itersPerSec: 1, running }], knobs }));
    }
    ticks.push({ tMs: now, knobs, windows, trainingRunning: training, decisions });
  }
  return { ticks, decisions: timeline.map((x) => x.d), timeline, finalKnobs: knobs, finalState: state };
}

/** Duty (or sleep ms) of a tick's knobs. */
export function pacingOf(t: Tick): number {
  return t.knobs.pacing.mode === 'duty' ? t.knobs.pacing.duty : t.knobs.pacing.sleepMs;
}

/** Ticks in [fromMs, toMs). */
export function between(ticks: Tick[], fromMs: number, toMs: number): Tick[] {
  return ticks.filter((t) => t.tMs >= fromMs && t.tMs < toMs);
}

/**
 * Options the control tests build gpucolo with: none, the shipped defaults (GPUCOLO_DEFAULTS). Kept as a named
 * constant so every test that runs gpucolo against this plant says so in one place.
 */
export const PER_WINDOW_GPUCOLO = {} as const;
