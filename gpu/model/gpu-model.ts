import type { Pacing } from '../../control/index.ts';
import type { Completion, TrainingStatus } from '../index.ts';
import { GpuModelError } from './errors.ts';
import { inferenceShareSpeed, serviceMs, tailModel, trainingInterference, trainingSpeed } from './physics.ts';
import type { GpuProfile } from './profile-schema.ts';
import { RequestQueue } from './request-queue.ts';
import { Rng, deriveSeed } from './rng.ts';
import { TrainingJob, type TrainingPhase } from './training-job.ts';

/**
 * How a service's batches arrive. 'poisson' and 'uniform' are open loads at rateRps; 'closed' is a
 * client that sends the next batch when the previous one returns, at most rateRps (the paper's
 * inference loop: its throughput rises when latency falls).
 */
export type ArrivalProcess = 'poisson' | 'uniform' | 'closed';

export interface ServiceOptions {
  id: string;
  batch: number;
  rateRps: number;
  arrival?: ArrivalProcess;
}

export interface TrainingOptions {
  id: string;
  /** Default 100. */
  mpsSharePct?: number;
  /** Default: per-iteration with no sleep. */
  pacing?: Pacing;
  /** Default true (already running at time 0, no start-up cost). */
  running?: boolean;
}

export interface GpuModelOptions {
  profile: GpuProfile;
  seed?: number;
  /** Simulated time at construction, ms (e.g. the device clock's reading). Default 0. */
  startMs?: number;
  services: ServiceOptions[];
  trainings: TrainingOptions[];
  /** Default: the profile's. */
  mpsRestartMs?: number;
  /** Default: the profile's. */
  sleepChangeMs?: number;
  /** Inference's own MPS share at start, 1..100 (the process is launched with it: no restart). Default 100. */
  inferenceSharePct?: number;
  /** Default: the profile's inferenceRestartMs, else this model's mpsRestartMs. */
  inferenceRestartMs?: number;
  /** False: no MPS, the GPU time-slices between processes. Default true. */
  mpsEnabled?: boolean;
  /** Waiting requests kept before new arrivals are dropped. Default 1e6. */
  queueCapacity?: number;
  /** Undrained completions kept per service before new ones are discarded. Default 1e6. */
  completionBufferCapacity?: number;
}

/** Counters of one service since the model started. */
export interface ServiceStats {
  serviceId: string;
  arrivals: number;
  completions: number;
  /** Arrivals refused because the shared queue was full. */
  dropped: number;
  /** Completions discarded because the caller did not drain them. */
  discarded: number;
  /** Requests of this service waiting or in service now. */
  inSystem: number;
}

interface Service {
  id: string;
  batch: number;
  rateRps: number;
  arrival: ArrivalProcess;
  rng: Rng;
  nextArrivalMs: number;
  lastArrivalMs: number;
  completions: Completion[];
  arrivalsSinceTake: number;
  stats: ServiceStats;
}

const NONE = 0, ARRIVAL = 1, COMPLETION = 2, TIMED = 3, ITERATION = 4, INFERENCE_RESTARTED = 5;

/**
 * A simulated GPU: per-request discrete-event simulation of inference next to paced training, driven
 * only by advanceTo (no wall clock, no timers). All inference services share one FIFO server in arrival
 * order (their kernels serialize on one GPU); it runs at speed 1 / (1 + I), where I sums the
 * interference of the training jobs awake at that instant (times the inference MPS cap's speed, and with
 * tailFactor x I for a tail batch). Speeds are piecewise constant between events, so a batch that spans a
 * training phase change finishes its remaining work at the new speed.
 */
export class GpuModel {
  readonly profile: GpuProfile;
  readonly mpsEnabled: boolean;
  readonly mpsRestartMs: number;
  readonly sleepChangeMs: number;
  readonly inferenceRestartMs: number;
  private t = 0;
  private readonly services: Service[] = [];
  private readonly serviceIndex = new Map<string, number>();
  private readonly jobs: TrainingJob[] = [];
  private readonly jobIndex = new Map<string, number>();
  private readonly queue: RequestQueue;
  private readonly completionCap: number;
  private busy = false;
  private currentArrivalMs = 0;
  private currentService = -1;
  private remainingWorkMs = 0;
  private inferenceSpeed = 1;
  private ratesStale = true;
  /** Full work of the batch in service (it starts over if inference restarts). */
  private currentWorkMs = 0;
  private currentTail = false;
  private readonly tailProb: number;
  private readonly tailFactor: number;
  private infSharePct: number;
  /** While inference restarts (its MPS share changed): when it serves again; Infinity otherwise. */
  private inferenceRestartUntilMs = Infinity;

  constructor(options: GpuModelOptions) {
    this.profile = options.profile;
    this.mpsEnabled = options.mpsEnabled ?? true;
    this.mpsRestartMs = nonNegative(options.mpsRestartMs ?? options.profile.mpsRestartMs, 'mpsRestartMs');
    this.sleepChangeMs = nonNegative(options.sleepChangeMs ?? options.profile.sleepChangeMs, 'sleepChangeMs');
    this.inferenceRestartMs = nonNegative(options.inferenceRestartMs ?? options.profile.inferenceRestartMs ?? this.mpsRestartMs, 'inferenceRestartMs');
    this.infSharePct = checkShare(options.inferenceSharePct ?? 100, 'inferenceSharePct');
    const tail = tailModel(options.profile);
    this.tailProb = tail.prob;
    this.tailFactor = tail.factor;
    this.queue = new RequestQueue(options.queueCapacity ?? 1e6);
    this.completionCap = options.completionBufferCapacity ?? 1e6;
    const seed = options.seed ?? 1;
    this.t = options.startMs ?? 0;
    options.services.forEach((s, i) => this.addService(s, deriveSeed(seed, i)));
    for (const j of options.trainings) {
      if (this.jobIndex.has(j.id)) throw new GpuModelError(`duplicate training job id "${j.id}"`);
      const pacing = checkPacing(j.pacing ?? { mode: 'per-iteration', sleepMs: 0 });
      this.jobIndex.set(j.id, this.jobs.length);
      this.jobs.push(new TrainingJob(j.id, checkShare(j.mpsSharePct ?? 100), pacing, j.running ?? true, this.t));
    }
  }

  /** Simulated time reached, ms. */
  get nowMs(): number {
    return this.t;
  }

  /** Run every event up to and including tMs; an earlier tMs is ignored (time never goes back). */
  advanceTo(tMs: number): void {
    if (!(tMs > this.t)) return;
    const services = this.services, jobs = this.jobs;
    for (;;) {
      if (this.ratesStale) this.refreshRates();
      let best = Infinity, kind = NONE, index = -1;
      for (let i = 0; i < services.length; i++) {
        const a = services[i]!.nextArrivalMs;
        if (a < best) { best = a; kind = ARRIVAL; index = i; }
      }
      if (this.busy && this.inferenceSpeed > 0) {
        const c = this.t + this.remainingWorkMs / this.inferenceSpeed;
        if (c < best) { best = c; kind = COMPLETION; }
      }
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i]!;
        const timed = job.nextTimedMs();
        if (timed < best) { best = timed; kind = TIMED; index = i; }
        const iter = job.nextSleepStartMs(this.t);
        if (iter < best) { best = iter; kind = ITERATION; index = i; }
      }
      if (this.inferenceRestartUntilMs < best) { best = this.inferenceRestartUntilMs; kind = INFERENCE_RESTARTED; }
      if (best > tMs) {
        this.flow(tMs - this.t);
        this.t = tMs;
        return;
      }
      this.flow(best - this.t);
      this.t = best;
      if (kind === ARRIVAL) this.onArrival(index);
      else if (kind === COMPLETION) this.onCompletion();
      else if (kind === TIMED) { jobs[index]!.onTimed(this.t); this.ratesStale = true; }
      else if (kind === ITERATION) { jobs[index]!.onIterationDone(this.t); this.ratesStale = true; }
      else if (kind === INFERENCE_RESTARTED) { this.inferenceRestartUntilMs = Infinity; this.ratesStale = true; }
    }
  }

  /** Completions of one service since the last call, and the arrivals counted in the same span. */
  takeCompletions(serviceId: string): { completions: Completion[]; arrivals: number } {
    const s = this.service(serviceId);
    const out = { completions: s.completions, arrivals: s.arrivalsSinceTake };
    s.completions = [];
    s.arrivalsSinceTake = 0;
    return out;
  }

  /** Change a service's offered load (batches per second; a cap for a closed loop). */
  setArrivalRate(serviceId: string, rateRps: number): void {
    const s = this.service(serviceId);
    s.rateRps = nonNegative(rateRps, 'rateRps');
    this.scheduleArrival(s);
  }

  /** Change a service's batch size; batches already sent keep theirs. */
  setBatch(serviceId: string, batch: number): void {
    this.service(serviceId).batch = checkBatch(batch);
  }

  /**
   * Apply a pacing; it takes effect sleepChangeMs from now. A duty above MAX_DUTY (control/) acts as MAX_DUTY, and
   * a per-iteration sleep never exceeds MAX_DUTY of the time, as on hardware; the status reports the pacing as set.
   */
  setPacing(jobId: string, pacing: Pacing): void {
    this.job(jobId).requestPacing(checkPacing(pacing), this.t + this.sleepChangeMs);
  }

  /** Change the MPS share: the job restarts and makes no progress, nor interferes, for mpsRestartMs. */
  setMpsShare(jobId: string, mpsSharePct: number): void {
    const job = this.job(jobId);
    job.sharePct = checkShare(mpsSharePct);
    if (job.state !== 'stopped') job.restart(this.t, this.mpsRestartMs);
    this.ratesStale = true;
  }

  /**
   * Change inference's own MPS share (1..100; 100 = uncapped). A change restarts the inference process: for
   * inferenceRestartMs no batch is served (arrivals queue) and the batch in service starts over afterwards.
   * The same share again changes nothing.
   */
  setInferenceShare(inferenceSharePct: number): void {
    const pct = checkShare(inferenceSharePct, 'inferenceSharePct');
    if (pct === this.infSharePct) return;
    this.infSharePct = pct;
    this.inferenceRestartUntilMs = this.t + this.inferenceRestartMs;
    if (this.busy) this.remainingWorkMs = this.currentWorkMs; // the process died with the batch
    this.ratesStale = true;
  }

  /** Inference's own MPS share now (100 unless a policy capped it). */
  get inferenceSharePct(): number {
    return this.infSharePct;
  }

  /** True while the inference process restarts after a share change (nothing is served). */
  get inferenceRestarting(): boolean {
    return this.inferenceRestartUntilMs !== Infinity;
  }

  /** Stop a job, or start a stopped one (starting costs mpsRestartMs, like a restart). */
  setTrainingRunning(jobId: string, running: boolean): void {
    const job = this.job(jobId);
    if (!running) job.stop();
    else if (job.state === 'stopped') job.restart(this.t, this.mpsRestartMs);
    this.ratesStale = true;
  }

  /** A training job's status (whole iterations completed since it was created). */
  trainingStatus(jobId: string): TrainingStatus {
    return this.job(jobId).status();
  }

  /** Awake, asleep, restarting or stopped, now. */
  trainingPhase(jobId: string): TrainingPhase {
    return this.job(jobId).phase;
  }

  /** Real-valued iterations completed (duty pacing makes partial progress). */
  trainingProgress(jobId: string): number {
    return this.job(jobId).progress;
  }

  /** Adds a service at run time (the fleet placed it here); an existing id only gets the new rate. */
  placeService(o: ServiceOptions): void {
    if (this.serviceIndex.has(o.id)) {
      this.setArrivalRate(o.id, o.rateRps);
      return;
    }
    this.addService(o, deriveSeed(this.services.length + 7919, this.services.length));
  }

  /** Adds a training job at run time, stopped (starting it costs mpsRestartMs); an existing id is left as it is. */
  placeTraining(o: TrainingOptions): void {
    if (this.jobIndex.has(o.id)) return;
    const pacing = checkPacing(o.pacing ?? { mode: 'per-iteration', sleepMs: 0 });
    this.jobIndex.set(o.id, this.jobs.length);
    this.jobs.push(new TrainingJob(o.id, checkShare(o.mpsSharePct ?? 100), pacing, false, this.t));
    this.ratesStale = true;
  }

  /** Counters of one service. */
  serviceStats(serviceId: string): ServiceStats {
    return { ...this.service(serviceId).stats };
  }

  /** Ids of the services and training jobs, in construction order. */
  ids(): { services: string[]; trainings: string[] } {
    return { services: this.services.map((s) => s.id), trainings: this.jobs.map((j) => j.id) };
  }

  /** Current inference speed as a fraction of alone-on-the-GPU speed. */
  currentInferenceSpeed(): number {
    if (this.ratesStale) this.refreshRates();
    return this.inferenceSpeed;
  }

  private addService(o: ServiceOptions, seed: number): void {
    if (this.serviceIndex.has(o.id)) throw new GpuModelError(`duplicate service id "${o.id}"`);
    const s: Service = {
      id: o.id, batch: checkBatch(o.batch), rateRps: nonNegative(o.rateRps, 'rateRps'),
      arrival: o.arrival ?? 'poisson', rng: new Rng(seed), nextArrivalMs: Infinity, lastArrivalMs: -Infinity,
      completions: [], arrivalsSinceTake: 0,
      stats: { serviceId: o.id, arrivals: 0, completions: 0, dropped: 0, discarded: 0, inSystem: 0 },
    };
    this.serviceIndex.set(o.id, this.services.length);
    this.services.push(s);
    this.scheduleArrival(s);
  }

  /** Next arrival from now (a Poisson re-draw on a rate change is exact: the process is memoryless). */
  private scheduleArrival(s: Service): void {
    if (s.rateRps <= 0 || (s.arrival === 'closed' && s.stats.inSystem > 0)) {
      s.nextArrivalMs = Infinity; // no load, or a closed-loop client waiting for its reply
      return;
    }
    const gapMs = 1000 / s.rateRps;
    if (s.arrival === 'poisson') s.nextArrivalMs = this.t + s.rng.exponential(gapMs);
    else if (s.lastArrivalMs === -Infinity) {
      // First batch: a closed loop starts at once; a uniform stream at a random phase.
      s.nextArrivalMs = this.t + (s.arrival === 'closed' ? 0 : s.rng.next() * gapMs);
    } else s.nextArrivalMs = Math.max(this.t, s.lastArrivalMs + gapMs);
  }

  private onArrival(index: number): void {
    const s = this.services[index]!;
    s.lastArrivalMs = this.t;
    s.stats.arrivals++;
    s.arrivalsSinceTake++;
    const workMs = serviceMs(this.profile, s.batch) * s.rng.lognormalUnitMean(this.profile.inference.jitterSigma);
    // Drawn only when tails are on, so a profile without them keeps its random stream.
    const tail = this.tailProb > 0 && s.rng.next() < this.tailProb;
    if (!this.busy) {
      this.startService(this.t, index, workMs, tail);
      s.stats.inSystem++;
    } else if (this.queue.push(this.t, index, workMs, tail)) {
      s.stats.inSystem++;
    } else {
      s.stats.dropped++;
    }
    this.scheduleArrival(s);
  }

  private onCompletion(): void {
    const s = this.services[this.currentService]!;
    s.stats.completions++;
    s.stats.inSystem--;
    if (s.completions.length < this.completionCap) s.completions.push({ tMs: this.t, latencyMs: this.t - this.currentArrivalMs });
    else s.stats.discarded++;
    this.busy = false;
    if (this.queue.length > 0) {
      const q = this.queue;
      this.startService(q.frontArrivalMs(), q.frontServiceIndex(), q.frontWorkMs(), q.frontTail());
      q.shift();
    } else {
      this.ratesStale = true; // training speeds up while inference is idle
    }
    if (s.arrival === 'closed') this.scheduleArrival(s);
  }

  private startService(arrivalMs: number, index: number, workMs: number, tail: boolean): void {
    if (!this.busy || tail !== this.currentTail) this.ratesStale = true;
    this.busy = true;
    this.currentArrivalMs = arrivalMs;
    this.currentService = index;
    this.remainingWorkMs = workMs;
    this.currentWorkMs = workMs;
    this.currentTail = tail;
  }

  /** Let dtMs pass at the current (constant) speeds. */
  private flow(dtMs: number): void {
    if (dtMs <= 0) return;
    if (this.busy) this.remainingWorkMs = Math.max(0, this.remainingWorkMs - dtMs * this.inferenceSpeed);
    for (const job of this.jobs) job.advance(dtMs);
  }

  private refreshRates(): void {
    this.ratesStale = false;
    let interference = 0, awake = 0, awakeSharePct = 0;
    for (const job of this.jobs) {
      if (!job.interfering) continue;
      awake++;
      awakeSharePct += job.sharePct;
      interference += trainingInterference(this.profile, job.sharePct, this.mpsEnabled);
    }
    const restarting = this.inferenceRestartUntilMs !== Infinity;
    // A tail batch sees tailFactor x the interference; alone (interference 0) it is like any other.
    const seen = this.busy && this.currentTail ? interference * this.tailFactor : interference;
    this.inferenceSpeed = restarting ? 0 : inferenceShareSpeed(this.profile, this.infSharePct) / (1 + seen);
    // Inference kernels run only while a batch is served (not while its process restarts).
    const inferring = this.busy && !restarting;
    // Several awake jobs split the GPU: MPS shares beyond 100% in sum slow everyone; time-slicing takes turns.
    const split = this.mpsEnabled ? Math.max(1, awakeSharePct / 100) : Math.max(1, awake);
    for (const job of this.jobs) {
      job.ratePerMs = job.interfering
        ? trainingSpeed(this.profile, job.sharePct, this.mpsEnabled, inferring) / split / this.profile.training.iterAloneMs
        : 0;
    }
  }

  private service(id: string): Service {
    const i = this.serviceIndex.get(id);
    if (i === undefined) throw new GpuModelError(`unknown service "${id}"; known: ${[...this.serviceIndex.keys()].join(', ') || 'none'}`);
    return this.services[i]!;
  }

  private job(id: string): TrainingJob {
    const i = this.jobIndex.get(id);
    if (i === undefined) throw new GpuModelError(`unknown training job "${id}"; known: ${[...this.jobIndex.keys()].join(', ') || 'none'}`);
    return this.jobs[i]!;
  }
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new GpuModelError(`${name} must be a finite number >= 0, got ${value}`);
  return value;
}

function checkBatch(batch: number): number {
  if (!Number.isFinite(batch) || batch <= 0) throw new GpuModelError(`batch must be > 0, got ${batch}`);
  return batch;
}

function checkShare(pct: number, name = 'mpsSharePct'): number {
  if (!Number.isFinite(pct) || pct < 1 || pct > 100) throw new GpuModelError(`${name} must be in 1..100, got ${pct}`);
  return pct;
}

function checkPacing(p: Pacing): Pacing {
  if (p.mode === 'per-iteration') {
    nonNegative(p.sleepMs, 'pacing.sleepMs');
  } else if (p.mode === 'duty') {
    if (!(p.duty >= 0 && p.duty <= 1)) throw new GpuModelError(`pacing.duty must be in 0..1, got ${p.duty}`);
    if (!(p.periodMs > 0 && Number.isFinite(p.periodMs))) throw new GpuModelError(`pacing.periodMs must be > 0, got ${p.periodMs}`);
  } else {
    throw new GpuModelError(`unknown pacing mode ${JSON.stringify((p as { mode?: unknown }).mode)}`);
  }
  return { ...p };
}
