import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Pacing } from '../../control/index.ts';
import {
  MpsControl, parseLatencyLine, PauseGuard, TrainingJob, WorkloadProcess,
  type NvidiaBinaries, type NvidiaGpu, type TrainingJobSpec,
} from '../nvidia/index.ts';
import type { Completion, GpuDevice, GpuInfo, TrainingStatus } from '../index.ts';
import type { Plant } from './procedure.ts';

/** The inference program calibrate launches: its argv may hold `{batch}`, replaced by the batch to measure. */
export interface CalibrationServiceSpec {
  id: string;
  command: string[];
  cwd?: string;
  env?: Record<string, string>;
  stopGraceMs?: number;
}

export interface NvidiaPlantOptions {
  gpu: NvidiaGpu;
  service: CalibrationServiceSpec;
  training: TrainingJobSpec;
  /** Holds the MPS pipe and log directories, the lease, progress and checkpoint files, the process record. */
  stateDir: string;
  binaries: NvidiaBinaries;
  leaseTtlMs?: number;
  log: (line: string) => void;
}

export const BATCH_PLACEHOLDER = '{batch}';

/**
 * A real GPU for calibrate: its own MPS control daemon, the training job of the workloads file (paced by its lease
 * or signals, restarted on a share change, as under the host runner) and the inference program relaunched at each
 * batch size (`{batch}` in its argv; GPUCOLO_BATCH in its environment) and stopped while training is timed alone.
 * A GpuDevice, so the same procedure measures it as the simulated GPU.
 */
export class CalibrationNvidiaDevice implements GpuDevice {
  readonly info: GpuInfo;
  readonly job: TrainingJob;
  private proc: WorkloadProcess | undefined;
  private pending: Completion[] = [];
  private batch = 1;
  private wantOn = false;
  private queue: Promise<void> = Promise.resolve();
  private readonly t0 = performance.now();
  private closing: Promise<void> | undefined;

  constructor(private readonly o: NvidiaPlantOptions & { mps: MpsControl; guard: PauseGuard; dir: string }) {
    this.info = { id: `gpu${o.gpu.index}`, index: o.gpu.index, name: o.gpu.name, memoryMiB: o.gpu.memoryTotalMiB ?? 0, backend: 'nvidia' };
    this.job = new TrainingJob(o.training, {
      label: `gpu${o.gpu.index}/${o.training.id}`, mps: o.mps, guard: o.guard, dir: o.dir, log: o.log,
      ...(o.leaseTtlMs ? { leaseTtlMs: o.leaseTtlMs } : {}),
    }, { mpsSharePct: 100, pacing: { mode: 'duty', duty: 0, periodMs: 1000 }, trainingRunning: false });
  }

  /** True when the inference command takes the batch size. */
  get batchSweep(): boolean {
    return this.o.service.command.some((a) => a.includes(BATCH_PLACEHOLDER));
  }

  now(): number {
    return performance.now() - this.t0;
  }

  takeCompletions(serviceId: string): { completions: Completion[]; arrivals: number } {
    this.check(serviceId);
    const completions = this.pending;
    this.pending = [];
    return { completions, arrivals: completions.length };
  }

  /** 0 stops the inference program; more starts it (its own loop sets the load: calibrate wants a closed loop). */
  setArrivalRate(serviceId: string, rateRps: number): void {
    this.check(serviceId);
    const on = rateRps > 0;
    if (on === this.wantOn) return;
    this.wantOn = on;
    this.enqueue(on ? async () => this.launch() : () => this.stopInference());
  }

  /** Relaunches the inference program with the new batch size when it runs and takes one. */
  setBatch(serviceId: string, batch: number): void {
    this.check(serviceId);
    if (batch === this.batch) return;
    this.batch = batch;
    if (this.wantOn && this.batchSweep) this.enqueue(async () => { await this.stopInference(); this.launch(); });
  }

  setPacing(jobId: string, pacing: Pacing): void {
    this.checkJob(jobId);
    this.job.setPacing(pacing);
  }

  setMpsShare(jobId: string, mpsSharePct: number): void {
    this.checkJob(jobId);
    void this.job.setMpsShare(mpsSharePct);
  }

  setTrainingRunning(jobId: string, running: boolean): void {
    this.checkJob(jobId);
    void this.job.setRunning(running);
  }

  trainingStatus(jobId: string): TrainingStatus {
    this.checkJob(jobId);
    return this.job.status();
  }

  /** Training checkpointed and stopped, inference stopped, the MPS daemon quit, the state directory released. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.wantOn = false;
      await this.queue;
      await this.job.close();
      await this.stopInference();
      try {
        await this.o.mps.quit();
      } catch (err) {
        this.o.log(`MPS daemon did not stop cleanly: ${(err as Error).message}`);
      }
      this.o.guard.close();
    })();
    return this.closing;
  }

  private launch(): void {
    const s = this.o.service;
    const label = `gpu${this.o.gpu.index}/${s.id}`;
    const command = s.command.map((a) => a.split(BATCH_PLACEHOLDER).join(String(this.batch)));
    const proc = WorkloadProcess.launch({
      label, command, log: this.o.log, owner: this.o.guard, ...(s.cwd ? { cwd: s.cwd } : {}),
      env: { ...s.env, ...this.o.mps.clientEnv(), GPUCOLO_SERVICE_ID: s.id, GPUCOLO_BATCH: String(this.batch) },
      onStdoutLine: (line) => {
        if (this.proc !== proc) return;
        const l = parseLatencyLine(line);
        if (!l) return;
        const tMs = this.now();
        for (const latencyMs of l) this.pending.push({ tMs, latencyMs });
        if (this.pending.length > 1_000_000) this.pending.splice(0, this.pending.length - 1_000_000);
      },
    });
    this.proc = proc;
    this.o.log(`${label}: launched pid ${proc.pid}: ${command.join(' ')}`);
  }

  private async stopInference(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    const { how, exit } = await proc.stop({
      graceMs: this.o.service.stopGraceMs ?? 10_000,
      terminateClient: async (pid) => { await this.o.mps.terminateClient(pid); },
    });
    this.o.log(`gpu${this.o.gpu.index}/${this.o.service.id}: pid ${proc.pid} stopped (${how}, ${exit.signal ?? `code ${exit.code}`})`);
  }

  private enqueue(op: () => Promise<void>): void {
    this.queue = this.queue.then(op).catch((err) => this.o.log(`gpu${this.o.gpu.index}/${this.o.service.id}: ${(err as Error).message}`));
  }

  private check(serviceId: string): void {
    if (serviceId !== this.o.service.id) throw new Error(`no inference service ${serviceId} on this GPU (calibrating ${this.o.service.id})`);
  }

  private checkJob(jobId: string): void {
    if (jobId !== this.o.training.id) throw new Error(`no training job ${jobId} on this GPU (calibrating ${this.o.training.id})`);
  }
}

/**
 * Claims the GPU for calibration: the state directory (stopping what a dead runner left), an MPS control daemon,
 * and the device. Nothing runs until the procedure starts it; `device.close()` undoes all of it.
 */
export async function startNvidiaPlant(o: NvidiaPlantOptions): Promise<Plant & { device: CalibrationNvidiaDevice }> {
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  const guard = new PauseGuard({ stateDir: o.stateDir, log: o.log });
  guard.start();
  await guard.reapLeftovers();
  const mps = new MpsControl({
    binaries: o.binaries, pipeDir: join(o.stateDir, `mps${o.gpu.index}`, 'pipe'), logDir: join(o.stateDir, `mps${o.gpu.index}`, 'log'),
    gpuUuid: o.gpu.uuid, log: o.log,
  });
  try {
    await mps.start();
  } catch (err) {
    await mps.quit().catch(() => {});
    guard.close();
    throw err;
  }
  const dir = join(o.stateDir, `gpu${o.gpu.index}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const device = new CalibrationNvidiaDevice({ ...o, mps, guard, dir });
  return {
    device, serviceId: o.service.id, jobId: o.training.id, batchSweep: device.batchSweep,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)), log: o.log,
  };
}
