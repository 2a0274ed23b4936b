import { mkdirSync } from 'node:fs';
import type { Knobs, Pacing } from '../../control/index.ts';
import type { Completion, DeviceHealth, GpuDevice, GpuInfo, TrainingStatus, WorkloadHealth } from '../index.ts';
import { NvidiaToolError } from './errors.ts';
import { parseLatencyLine, PromLatencyTracker, type PromLatencyKind } from './latency.ts';
import type { MpsControl } from './mps.ts';
import type { PauseGuard } from './pause-guard.ts';
import { DEFAULT_RESTART, describeExit, RestartTracker, type RestartPolicy } from './restart.ts';
import type { NvidiaGpu } from './smi.ts';
import { TrainingJob, type TrainingJobSpec } from './training-job.ts';
import { memoryLimitEnv, WorkloadProcess, type ExitInfo } from './workload-process.ts';

/** Where a service's latency comes from. */
export type LatencySource =
  | { kind: 'stdout' }
  | { kind: PromLatencyKind; url: string; model?: string; intervalMs: number };

/** An inference service: a program we launch (optional: Triton or vLLM may run already) and its latency source. */
export interface ServiceSpec {
  id: string;
  command?: string[];
  cwd?: string;
  env?: Record<string, string>;
  latency: LatencySource;
  /** How long the service gets to exit after SIGTERM on stop (default 10 s). */
  stopGraceMs?: number;
  /** When a process that exited on its own is launched again (default: on failure, 1 s backoff, 5 in a row). */
  restart?: RestartPolicy;
  /** GPU memory the process may pin through MPS, MiB. */
  memoryLimitMiB?: number;
}


export interface NvidiaDeviceOptions {
  gpuId: string;
  gpu: NvidiaGpu;
  /** Device clock (ms): the host runner's clock, so completions and actor timers agree. */
  clock: () => number;
  mps: MpsControl;
  guard: PauseGuard;
  /** This GPU's folder for leases, progress and checkpoints. */
  dir: string;
  services: ServiceSpec[];
  trainings: TrainingJobSpec[];
  initial: Knobs;
  leaseTtlMs?: number;
  /** How often the MPS daemon's health is checked (default 5 s; 0 = never). */
  healthPeriodMs?: number;
  log: (line: string) => void;
}

interface ServiceRuntime {
  spec: ServiceSpec;
  pending: Completion[];
  proc?: WorkloadProcess;
  scrape?: NodeJS.Timeout;
  /** Why the latency endpoint cannot be read now (a scrape failed); undefined while it answers. */
  scrapeFailing?: string;
  stopping?: boolean;
  restarts: RestartTracker;
  restartTimer?: NodeJS.Timeout;
  /** Why the process is down now (exited on its own, not yet back); undefined while it runs. */
  down?: string;
  /** What the listeners were last told is wrong (undefined: nothing, the service is up). */
  reported?: string;
}

/**
 * A real NVIDIA GPU: inference and training run as processes under this runner's MPS daemon; latency
 * comes from the workloads' stdout or a Prometheus endpoint; training is paced by its pacer and its
 * share changed by a checkpoint-and-restart.
 */
export class NvidiaGpuDevice implements GpuDevice {
  readonly info: GpuInfo;
  readonly jobs = new Map<string, TrainingJob>();
  private readonly services = new Map<string, ServiceRuntime>();
  private readonly log: (line: string) => void;
  private health: NodeJS.Timeout | undefined;
  private healthState = 'ok';
  private healthCheck: Promise<void> | undefined;
  private readonly healthListeners: ((h: DeviceHealth) => void)[] = [];
  private closing: Promise<void> | undefined;
  private loadNoted = new Set<string>();
  private readonly workloadListeners: ((e: WorkloadHealth) => void)[] = [];

  constructor(private readonly o: NvidiaDeviceOptions) {
    this.log = o.log;
    this.info = { id: o.gpuId, index: o.gpu.index, name: o.gpu.name, memoryMiB: o.gpu.memoryTotalMiB ?? 0, backend: 'nvidia' };
  }

  /**
   * Launches the workloads: inference first, so training never starts on a GPU whose service is not
   * there yet. A launch that fails leaves what did launch to close().
   */
  start(): void {
    const o = this.o;
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    for (const spec of o.services) {
      const rt: ServiceRuntime = { spec, pending: [], restarts: new RestartTracker(spec.restart ?? DEFAULT_RESTART) };
      this.services.set(spec.id, rt);
      this.startService(rt);
    }
    for (const spec of o.trainings) {
      this.jobs.set(spec.id, new TrainingJob(spec, { label: `${o.gpuId}/${spec.id}`, mps: o.mps, guard: o.guard, dir: o.dir, log: o.log, ...(o.leaseTtlMs ? { leaseTtlMs: o.leaseTtlMs } : {}) }, o.initial));
    }
    const period = o.healthPeriodMs ?? 5000;
    if (period > 0) {
      this.health = setInterval(() => void this.checkHealth(), period);
      this.health.unref();
    }
  }

  private startService(rt: ServiceRuntime): void {
    const spec = rt.spec;
    const label = `${this.o.gpuId}/${spec.id}`;
    if (spec.command) this.launchService(rt);
    if (spec.latency.kind !== 'stdout') {
      const src = spec.latency;
      const tracker = new PromLatencyTracker(src.kind, src.model);
      const scrape = async () => {
        try {
          const res = await fetch(src.url, { signal: AbortSignal.timeout(Math.max(500, src.intervalMs)) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          this.record(rt, tracker.ingest(await res.text()));
          if (rt.scrapeFailing) this.log(`${label}: scrape of ${src.url} works again`);
          rt.scrapeFailing = undefined;
          this.reportWorkload(rt);
        } catch (err) {
          if (rt.stopping || this.closing) return;
          if (!rt.scrapeFailing) this.log(`${label}: scrape of ${src.url} failed: ${(err as Error).message}; retrying every ${src.intervalMs} ms`);
          // No latency can come from an endpoint that does not answer (a server that never came up, or died).
          rt.scrapeFailing ??= `its latency endpoint ${src.url} does not answer (${(err as Error).message})`;
          this.reportWorkload(rt);
        }
      };
      void scrape();
      rt.scrape = setInterval(() => void scrape(), src.intervalMs);
    }
  }

  /** Launches a service's process; its exit on its own is a workload down, relaunched under its policy. */
  private launchService(rt: ServiceRuntime): void {
    const spec = rt.spec;
    const label = `${this.o.gpuId}/${spec.id}`;
    const proc = WorkloadProcess.launch({
      label, command: spec.command!, log: this.log, owner: this.o.guard,
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      // Ours last: a service started with another pipe directory would silently bypass MPS.
      env: { ...spec.env, ...this.o.mps.clientEnv(), ...memoryLimitEnv(spec.memoryLimitMiB), GPUCOLO_SERVICE_ID: spec.id },
      onStdoutLine: spec.latency.kind === 'stdout' ? (line) => this.record(rt, parseLatencyLine(line)) : undefined,
    });
    rt.proc = proc;
    const launchedAtMs = Date.now();
    this.log(`${label}: launched pid ${proc.pid} (latency from ${spec.latency.kind === 'stdout' ? 'stdout' : spec.latency.url}${spec.memoryLimitMiB ? `, GPU memory limit ${spec.memoryLimitMiB} MiB` : ''})`);
    void proc.exited.then((exit) => {
      if (rt.stopping || this.closing || rt.proc !== proc) return;
      this.serviceDown(rt, `inference pid ${proc.pid} exited on its own (${describeExit(exit)}) after ${Date.now() - launchedAtMs} ms`, exit, Date.now() - launchedAtMs);
    });
  }

  /** A service's process is gone: say so (a safety matter for the GPU actor) and relaunch it if its policy says. */
  private serviceDown(rt: ServiceRuntime, what: string, exit: ExitInfo, ranMs: number): void {
    const label = `${this.o.gpuId}/${rt.spec.id}`;
    const verdict = rt.restarts.onExit(exit, ranMs);
    const next = verdict.restart
      ? `relaunch ${verdict.attempt} of at most ${verdict.limit} in ${verdict.delayMs} ms`
      : `not relaunched: ${verdict.why}`;
    rt.down = `${what}; ${next}`;
    this.log(`${label}: ${rt.down}`);
    this.reportWorkload(rt);
    if (!verdict.restart) return;
    rt.restartTimer = setTimeout(() => {
      rt.restartTimer = undefined;
      if (rt.stopping || this.closing) return;
      try {
        this.launchService(rt);
      } catch (err) {
        this.serviceDown(rt, `relaunch failed: ${(err as Error).message}`, { code: 127, signal: null }, 0);
        return;
      }
      rt.down = undefined;
      this.reportWorkload(rt);
    }, verdict.delayMs);
  }

  /** What is wrong with a service now: its process down, else its latency endpoint silent; undefined when neither. */
  private workloadProblem(rt: ServiceRuntime): string | undefined {
    return rt.down ?? rt.scrapeFailing;
  }

  /** Tells the listeners when what is wrong with a service changes (down, with why) or clears (up). */
  private reportWorkload(rt: ServiceRuntime): void {
    const problem = this.workloadProblem(rt);
    if (problem === rt.reported) return;
    rt.reported = problem;
    this.emitWorkload(problem
      ? { serviceId: rt.spec.id, state: 'down', detail: `service ${rt.spec.id}: ${problem}` }
      : { serviceId: rt.spec.id, state: 'up', detail: `service ${rt.spec.id}: up again${rt.proc ? ` (pid ${rt.proc.pid})` : ''}` });
  }

  private emitWorkload(e: WorkloadHealth): void {
    for (const l of this.workloadListeners) {
      try { l(e); } catch (err) { this.log(`${this.o.gpuId}: workload listener failed: ${(err as Error).message}`); }
    }
  }

  onWorkload(listener: (e: WorkloadHealth) => void): void {
    this.workloadListeners.push(listener);
    for (const rt of this.services.values()) {
      if (rt.reported) listener({ serviceId: rt.spec.id, state: 'down', detail: `service ${rt.spec.id}: ${rt.reported}` });
    }
  }

  /** The share training is held at when one of its jobs cannot checkpoint (a restart would lose its work). */
  get fixedMpsSharePct(): number | undefined {
    for (const j of this.jobs.values()) if (!j.canCheckpoint) return j.mpsSharePct;
    return undefined;
  }

  private record(rt: ServiceRuntime, latenciesMs: number[] | null): void {
    if (!latenciesMs?.length) return;
    const tMs = this.o.clock();
    for (const latencyMs of latenciesMs) rt.pending.push({ tMs, latencyMs });
    // A stalled consumer must not grow memory without bound.
    if (rt.pending.length > 100_000) rt.pending.splice(0, rt.pending.length - 100_000);
  }

  now(): number {
    return this.o.clock();
  }

  takeCompletions(serviceId: string): { completions: Completion[]; arrivals: number } {
    const rt = this.service(serviceId);
    const completions = rt.pending;
    rt.pending = [];
    // A real service's arrivals are not seen by the runner; each finished request arrived once.
    return { completions, arrivals: completions.length };
  }

  /** The offered load of a real service is set by its clients, not by the runner: noted once, ignored. */
  setArrivalRate(serviceId: string, _rateRps: number): void {
    this.noteLoad(serviceId);
  }

  setBatch(serviceId: string, _batch: number): void {
    this.noteLoad(serviceId);
  }

  private noteLoad(serviceId: string): void {
    this.service(serviceId);
    if (this.loadNoted.has(serviceId)) return;
    this.loadNoted.add(serviceId);
    this.log(`${this.o.gpuId}/${serviceId}: rate and batch commands are ignored on a real GPU (the service's clients set its load)`);
  }

  setPacing(jobId: string, pacing: Pacing): void {
    this.job(jobId).setPacing(pacing);
  }

  setMpsShare(jobId: string, mpsSharePct: number): void {
    void this.job(jobId).setMpsShare(mpsSharePct);
  }

  setTrainingRunning(jobId: string, running: boolean): void {
    void this.job(jobId).setRunning(running);
  }

  canCheckpoint(jobId: string): boolean {
    return this.job(jobId).canCheckpoint;
  }

  trainingStatus(jobId: string): TrainingStatus {
    return this.job(jobId).status();
  }

  /** Training checkpointed and stopped, inference stopped, every client gone, then the MPS daemon quit. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    clearInterval(this.health);
    for (const rt of this.services.values()) { rt.stopping = true; clearTimeout(rt.restartTimer); }
    await Promise.all([...this.jobs.values()].map((j) => j.close()));
    await Promise.all([...this.services.values()].map(async (rt) => {
      clearInterval(rt.scrape);
      if (!rt.proc) return;
      const { how, exit } = await rt.proc.stop({
        graceMs: rt.spec.stopGraceMs ?? 10_000,
        terminateClient: async (pid) => { await this.o.mps.terminateClient(pid); },
      });
      this.log(`${this.o.gpuId}/${rt.spec.id}: pid ${rt.proc.pid} stopped (${how}, ${exit.signal ?? `code ${exit.code}`})`);
    }));
    // A health check still talking to the daemon would read its quit as a failure: let it finish first.
    await this.healthCheck?.catch(() => undefined);
    try {
      await this.o.mps.quit();
    } catch (err) {
      this.log(`${this.o.gpuId}: MPS daemon did not stop cleanly: ${(err as Error).message}`);
    }
  }

  /** Reports a missing, hung or faulted MPS daemon (once per change of state). */
  private async checkHealth(): Promise<void> {
    // One check at a time: a slow or hung daemon must not pile up tool processes.
    if (this.healthCheck || this.closing) return;
    this.healthCheck = this.readHealth().finally(() => { this.healthCheck = undefined; });
    await this.healthCheck;
  }

  private async readHealth(): Promise<void> {
    let state = 'ok';
    let detail = '';
    try {
      const faulted = await this.o.mps.faultedServers();
      if (faulted.length) { state = 'fault'; detail = `MPS server(s) ${faulted.join(', ')} report a fault: every client on this GPU fails until the server is restarted`; }
    } catch (err) {
      state = err instanceof NvidiaToolError ? err.kind : 'failed';
      detail = (err as Error).message;
    }
    // A reading taken while the runner stops its own daemon says nothing about the device.
    if (this.closing || state === this.healthState) return;
    this.log(state === 'ok' ? `${this.o.gpuId}: MPS daemon healthy again` : `${this.o.gpuId}: MPS daemon ${state}: ${detail}`);
    this.healthState = state;
    const change: DeviceHealth = { state, detail: state === 'ok' ? 'MPS daemon healthy again' : `MPS daemon ${state}: ${detail}` };
    for (const l of this.healthListeners) l(change);
  }

  onHealth(listener: (health: DeviceHealth) => void): void {
    this.healthListeners.push(listener);
  }

  /** The last MPS health reading: ok, fault, hung, no-daemon, missing, failed. */
  get mpsHealth(): string {
    return this.healthState;
  }

  private service(id: string): ServiceRuntime {
    const rt = this.services.get(id);
    if (!rt) throw new Error(`no inference service ${id} on ${this.o.gpuId}`);
    return rt;
  }

  private job(id: string): TrainingJob {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`no training job ${id} on ${this.o.gpuId}`);
    return j;
  }
}
