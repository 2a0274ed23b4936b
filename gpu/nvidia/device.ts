import { mkdirSync } from 'node:fs';
import type { Knobs, Pacing } from '../../control/types.ts';
import type { Completion, DeviceHealth, GpuDevice, GpuInfo, TrainingStatus } from '../types.ts';
import { NvidiaToolError } from './errors.ts';
import { parseLatencyLine, PromLatencyTracker, type PromLatencyKind } from './latency.ts';
import type { MpsControl } from './mps.ts';
import type { PauseGuard } from './pause-guard.ts';
import type { NvidiaGpu } from './smi.ts';
import { TrainingJob, type TrainingJobSpec } from './training-job.ts';
import { WorkloadProcess } from './workload-process.ts';

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
  scrapeFailing?: boolean;
  stopping?: boolean;
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
  private healthChecking = false;
  private readonly healthListeners: ((h: DeviceHealth) => void)[] = [];
  private closing: Promise<void> | undefined;
  private loadNoted = new Set<string>();

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
      const rt: ServiceRuntime = { spec, pending: [] };
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
    if (spec.command) {
      const proc = WorkloadProcess.launch({
        label, command: spec.command, log: this.log, owner: this.o.guard,
        ...(spec.cwd ? { cwd: spec.cwd } : {}),
        env: { ...spec.env, ...this.o.mps.clientEnv(), GPUCOLO_SERVICE_ID: spec.id },
        onStdoutLine: spec.latency.kind === 'stdout' ? (line) => this.record(rt, parseLatencyLine(line)) : undefined,
      });
      rt.proc = proc;
      this.log(`${label}: launched pid ${proc.pid} (latency from ${spec.latency.kind === 'stdout' ? 'stdout' : spec.latency.url})`);
      void proc.exited.then((exit) => {
        if (!rt.stopping) this.log(`${label}: inference pid ${proc.pid} exited on its own (${exit.signal ?? `code ${exit.code}`}); no latency will come from it`);
      });
    }
    if (spec.latency.kind !== 'stdout') {
      const src = spec.latency;
      const tracker = new PromLatencyTracker(src.kind, src.model);
      const scrape = async () => {
        try {
          const res = await fetch(src.url, { signal: AbortSignal.timeout(Math.max(500, src.intervalMs)) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          this.record(rt, tracker.ingest(await res.text()));
          if (rt.scrapeFailing) this.log(`${label}: scrape of ${src.url} works again`);
          rt.scrapeFailing = false;
        } catch (err) {
          if (!rt.scrapeFailing) this.log(`${label}: scrape of ${src.url} failed: ${(err as Error).message}; retrying every ${src.intervalMs} ms`);
          rt.scrapeFailing = true;
        }
      };
      void scrape();
      rt.scrape = setInterval(() => void scrape(), src.intervalMs);
    }
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
    await Promise.all([...this.jobs.values()].map((j) => j.close()));
    await Promise.all([...this.services.values()].map(async (rt) => {
      clearInterval(rt.scrape);
      if (!rt.proc) return;
      rt.stopping = true;
      const { how, exit } = await rt.proc.stop({
        graceMs: rt.spec.stopGraceMs ?? 10_000,
        terminateClient: async (pid) => { await this.o.mps.terminateClient(pid); },
      });
      this.log(`${this.o.gpuId}/${rt.spec.id}: pid ${rt.proc.pid} stopped (${how}, ${exit.signal ?? `code ${exit.code}`})`);
    }));
    try {
      await this.o.mps.quit();
    } catch (err) {
      this.log(`${this.o.gpuId}: MPS daemon did not stop cleanly: ${(err as Error).message}`);
    }
  }

  /** Reports a missing, hung or faulted MPS daemon (once per change of state). */
  private async checkHealth(): Promise<void> {
    // One check at a time: a slow or hung daemon must not pile up tool processes.
    if (this.healthChecking || this.closing) return;
    this.healthChecking = true;
    try {
      await this.readHealth();
    } finally {
      this.healthChecking = false;
    }
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
    if (state === this.healthState) return;
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
