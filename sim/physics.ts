/**
 * The fleet simulator's per-GPU physics: a fluid (analytic) steady state of one GPU under a constant load,
 * derived from the same profile and the same curves as gpu/model (serviceMs, trainingInterference,
 * trainingSpeed, iterationMs), so that one call replaces minutes of per-request simulation.
 *
 * The GPU model: every inference request shares one FIFO server running at 1 / (1 + sum of I) while
 * training is awake and at full speed while it sleeps. Training wakes and sleeps periodically (duty
 * pacing: awake (1 - duty) of every periodMs; per-iteration pacing: an iteration, then sleepMs).
 * Over one pacing period:
 *   - fluid part: when the awake server is slower than the offered work, a backlog builds while training
 *     is awake and drains while it sleeps; a request waits for the backlog ahead of it (unstable when the
 *     period's average capacity is below the load: latency infinite);
 *   - random part: on top of no backlog, Poisson arrivals at near-constant service time queue as an M/D/1
 *     queue at the phase's local load; its waiting time has the exponential tail P(W > w) = rho e^(-theta w),
 *     theta the positive root of lambda (e^(theta x) - 1) = theta (Cramer-Lundberg).
 * The latency distribution is the mixture over arrival instants across the period (a grid), and the
 * quantile is found by bisection. Training progresses while awake at trainingSpeed(share, inference busy)
 * split between jobs whose shares add up to more than 100%, as in gpu/model.
 * test/sim/physics.test.ts runs gpu/model on the same loads and checks the agreement.
 */
import { iterationMs, trainingInterference, trainingSpeed, type GpuProfile } from '../gpu/model/index.ts';

/** One training job on the GPU: its MPS share now, and the share past which it gets no faster. */
export interface FluidTraining {
  sharePct: number;
  /** Fraction of the whole GPU the job uses alone (1 = it saturates a GPU); its speed is relative to that. */
  demand: number;
}

export type FluidPacing = { mode: 'duty'; duty: number; periodMs: number } | { mode: 'per-iteration'; sleepMs: number };

export interface FluidGpu {
  profile: GpuProfile;
  /** Inference busy fraction alone on this GPU (sum over services), 0.. */
  rho: number;
  /** Mean batch time alone on this GPU, ms. */
  serviceMs: number;
  trainings: readonly FluidTraining[];
  pacing: FluidPacing;
}

export interface FluidResult {
  p99Ms: number;
  meanMs: number;
  /** Probability that a request's latency exceeds the queried SLO (when one is given). */
  overSlo: number;
  /** Per job: progress rate as a fraction of the job's speed alone on this GPU. */
  trainingSpeed: number[];
  /** Fraction of time training is awake. */
  awake: number;
}

const GRID = 24;

/** theta of the M/D/1 waiting-time tail at arrival rate lambda (per ms) and service time x (ms); 0 when unstable. */
export function tailRate(lambda: number, x: number): number {
  const rho = lambda * x;
  if (!(rho < 1) || lambda <= 0) return lambda <= 0 ? Infinity : 0;
  // Newton from above: f(th) = lambda (e^(th x) - 1) - th is convex with f(0) = 0, f'(0) = rho - 1 < 0.
  let th = Math.max(2 * (1 - rho) / (rho * x), 1e-9);
  while (lambda * (Math.exp(th * x) - 1) - th < 0) th *= 2;
  for (let i = 0; i < 60; i++) {
    const e = Math.exp(th * x);
    const f = lambda * (e - 1) - th;
    const d = lambda * x * e - 1;
    const next = th - f / d;
    if (Math.abs(next - th) < 1e-10 * th) return next;
    th = next;
  }
  return th;
}

interface Phase {
  /** Weight of arrivals (time fraction). */
  w: number;
  /** Fluid delay before the request starts, ms. */
  delayMs: number;
  /** Service time of the request, ms. */
  svcMs: number;
  /** Random queue: load, arrival rate per ms, its service time and tail rate (see waitTail). */
  c: number;
  lambda: number;
  qSvcMs: number;
  theta: number;
  meanWaitMs: number;
}

/** Awake fraction, period and inference speeds under the pacing. */
function pacingShape(g: FluidGpu): { awake: number; periodMs: number; vAwake: number } {
  const interference = g.trainings.reduce((s, t) => s + trainingInterference(g.profile, t.sharePct, true), 0);
  const vAwake = 1 / (1 + interference);
  if (g.trainings.length === 0) return { awake: 0, periodMs: 1, vAwake: 1 };
  if (g.pacing.mode === 'duty') return { awake: 1 - g.pacing.duty, periodMs: g.pacing.periodMs, vAwake };
  const share = Math.max(...g.trainings.map((t) => t.sharePct));
  const iter = iterationMs(g.profile, share, true);
  return { awake: iter / (iter + g.pacing.sleepMs), periodMs: iter + g.pacing.sleepMs, vAwake };
}

/**
 * Time to serve `work` alone-ms of batch starting at `startMs` into the period: the speed is vAwake while
 * training is awake (the first tA ms of each period) and 1 while it sleeps, so a batch that spans a phase
 * change finishes at the new speed, as in gpu/model.
 */
function serveMs(work: number, startMs: number, tA: number, periodMs: number, vAwake: number): number {
  let t = startMs % periodMs;
  let left = work;
  let spent = 0;
  for (let guard = 0; guard < 1000 && left > 1e-12; guard++) {
    const awakeNow = t < tA;
    const speed = awakeNow ? vAwake : 1;
    const edge = awakeNow ? tA : periodMs;
    const can = (edge - t) * speed;
    if (can >= left) return spent + left / speed;
    left -= can;
    spent += edge - t;
    t = edge % periodMs;
  }
  return spent;
}

/**
 * The grid of arrival instants over one pacing period, each with its fluid delay, its service time and its
 * random queue. The random queue of a phase relaxes towards the phase's own load only when the phase is
 * long against the queue's relaxation time; over shorter phases it sees the period's average capacity.
 */
function phases(g: FluidGpu, awake: number, periodMs: number, vAwake: number): Phase[] | null {
  const x = g.serviceMs;
  const lambda = g.rho / x; // per ms
  const queue = (svc: number) => {
    const rho = Math.min(0.98, lambda * svc);
    return { rho, svc, theta: tailRate(lambda, svc), meanWaitMs: lambda > 0 ? (rho * svc) / (2 * (1 - rho)) : 0 };
  };
  if (awake <= 0 || awake >= 1) {
    const v = awake >= 1 ? vAwake : 1;
    if (g.rho >= v) return null;
    const q = queue(x / v);
    return [{ w: 1, delayMs: 0, svcMs: x / v, c: q.rho, lambda, qSvcMs: q.svc, theta: q.theta, meanWaitMs: q.meanWaitMs }];
  }
  const capacity = awake * vAwake + (1 - awake);
  if (g.rho >= capacity) return null;
  const tA = awake * periodMs;
  const tS = periodMs - tA;
  const avg = queue(x / capacity);
  const local = (speed: number, phaseMs: number) => {
    const svc = x / speed;
    if (lambda * svc >= 0.98) return avg;
    const q = queue(svc);
    const relaxMs = svc / (1 - q.rho);
    const a = phaseMs / (phaseMs + relaxMs);
    const mix = (u: number, v: number) => a * u + (1 - a) * v;
    return { rho: mix(q.rho, avg.rho), svc: mix(q.svc, avg.svc), theta: mix(q.theta, avg.theta), meanWaitMs: mix(q.meanWaitMs, avg.meanWaitMs) };
  };
  const qA = local(vAwake, tA);
  const qS = local(1, tS);
  const grow = Math.max(0, g.rho - vAwake); // alone-work ms per ms
  const out: Phase[] = [];
  const nA = Math.max(2, Math.round(GRID * awake));
  const nS = Math.max(2, GRID - nA);
  const push = (tau: number, w: number, delayMs: number, q: { rho: number; svc: number; theta: number; meanWaitMs: number }) => {
    const svcMs = serveMs(x, tau + delayMs + q.meanWaitMs, tA, periodMs, vAwake);
    out.push({ w, delayMs, svcMs, c: q.rho, lambda, qSvcMs: q.svc, theta: q.theta, meanWaitMs: q.meanWaitMs });
  };
  for (let i = 0; i < nA; i++) {
    const tau = ((i + 0.5) / nA) * tA;
    push(tau, awake / nA, (grow * tau) / vAwake, qA);
  }
  const peak = grow * tA;
  for (let i = 0; i < nS; i++) {
    const tau = tA + ((i + 0.5) / nS) * tS;
    push(tau, (1 - awake) / nS, Math.max(0, peak - (1 - g.rho) * (tau - tA)), qS);
  }
  return out;
}

/**
 * P(W > w) of an M/D/1 queue: exact below one service time, P(W <= w) = (1 - rho) e^(lambda w), and the
 * exponential (Cramer-Lundberg) tail beyond it, joined continuously.
 */
function waitTail(f: Phase, w: number): number {
  if (w < 0) return 1;
  if (f.c <= 0) return 0;
  const x = f.qSvcMs;
  if (w <= x) return Math.max(0, 1 - (1 - f.c) * Math.exp(f.lambda * w));
  return Math.max(0, 1 - (1 - f.c) * Math.exp(f.lambda * x)) * Math.exp(-f.theta * (w - x));
}

function exceed(ph: readonly Phase[], tMs: number): number {
  let p = 0;
  for (const f of ph) p += f.w * waitTail(f, tMs - f.delayMs - f.svcMs);
  return p;
}

/** Steady state of one GPU: inference p99 and mean, and each training job's relative speed. */
export function fluidGpu(g: FluidGpu, sloMs = Infinity): FluidResult {
  const { awake, periodMs, vAwake } = pacingShape(g);
  const ph = phases(g, awake, periodMs, vAwake);
  const speeds = trainingSpeeds(g, awake, vAwake);
  if (ph === null) return { p99Ms: Infinity, meanMs: Infinity, overSlo: 1, trainingSpeed: speeds, awake };
  let lo = 0, hi = 1;
  while (exceed(ph, hi) > 0.01) hi *= 2;
  for (let i = 0; i < 40 && hi - lo > 1e-4 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (exceed(ph, mid) > 0.01) lo = mid;
    else hi = mid;
  }
  let mean = 0;
  for (const f of ph) mean += f.w * (f.delayMs + f.svcMs + f.meanWaitMs);
  return { p99Ms: hi, meanMs: mean, overSlo: Number.isFinite(sloMs) ? Math.min(1, exceed(ph, sloMs)) : 0, trainingSpeed: speeds, awake };
}

function trainingSpeeds(g: FluidGpu, awake: number, vAwake: number): number[] {
  if (g.trainings.length === 0) return [];
  // While training is awake the server is busy for rho / vAwake of the time (all of it when overloaded).
  const busy = Math.min(1, g.rho / vAwake);
  const shares = g.trainings.reduce((s, t) => s + t.sharePct, 0);
  const split = Math.max(1, shares / 100);
  return g.trainings.map((t) => {
    const mixed = busy * trainingSpeed(g.profile, t.sharePct, true, true) + (1 - busy) * trainingSpeed(g.profile, t.sharePct, true, false);
    const alone = trainingSpeed(g.profile, Math.min(100, Math.max(1, 100 * t.demand)), true, false);
    return Math.min(1, (awake * mixed) / split / alone);
  });
}
