import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPUCOLO_DEFAULTS, MAX_DUTY, type Knobs, type Pacing } from '../../control/index.ts';
import type { TrainingRunState, TrainingStatus } from '../index.ts';
import type { MpsControl } from './mps.ts';
import { LeasePacer, SignalPacer, type Pacer, type PacingMode } from './pacer.ts';
import type { PauseGuard } from './pause-guard.ts';
import { DEFAULT_RESTART, describeExit, RestartTracker, type RestartPolicy } from './restart.ts';
import { memoryLimitEnv, WorkloadProcess } from './workload-process.ts';

/** A training program as the workloads file names it. */
export interface TrainingJobSpec {
  id: string;
  command: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** cooperative: the program calls the hook; signal: SIGSTOP/SIGCONT from outside. */
  pacing: PacingMode;
  /** How long the job gets to checkpoint and exit after SIGTERM (default 30 s). */
  checkpointGraceMs?: number;
  /**
   * Whether the job saves on SIGTERM and resumes when relaunched (default: cooperative jobs do, signal-paced
   * ones, "jobs that cannot be changed", do not). One that cannot is never restarted for a share change.
   */
  checkpoint?: boolean;
  /** The fixed MPS share of a job that cannot checkpoint (default: the share it is first given). */
  mpsSharePct?: number;
  /** When a process that exited on its own is launched again (default: on failure, 1 s backoff, 5 in a row). */
  restart?: RestartPolicy;
  /** GPU memory the process may pin through MPS, MiB. */
  memoryLimitMiB?: number;
}

export interface TrainingJobDeps {
  /** `gpu0/wrn101`, for logs. */
  label: string;
  mps: MpsControl;
  guard: PauseGuard;
  /** Where the job's lease, progress and checkpoint files live. */
  dir: string;
  leaseTtlMs?: number;
  log: (line: string) => void;
}

/** Reads an iteration count from a training program's stdout line (`{"iterations": N}` since the process started). */
export function iterationsFromLine(line: string): number | undefined {
  const s = line.trim();
  if (!s.startsWith('{')) return undefined;
  try {
    const o = JSON.parse(s) as Record<string, unknown>;
    const v = o.iterations;
    return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One training job under MPS: launched as a client of the GPU's daemon with its thread share, paced by
 * its pacer, and restarted (checkpoint, exit, relaunch with the new CUDA_MPS_ACTIVE_THREAD_PERCENTAGE)
 * when the share changes. Operations run one at a time, in order.
 */
export class TrainingJob {
  state: TrainingRunState = 'stopped';
  mpsSharePct: number;
  pacing: Pacing;
  /** Launches so far (the first one included). */
  launches = 0;
  readonly pacer: Pacer;
  readonly leaseFile: string;
  readonly progressFile: string;
  readonly checkpointFile: string;
  private proc: WorkloadProcess | undefined;
  private stopping = false;
  private itersBase = 0;
  private itersProc = 0;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly restarts: RestartTracker;
  private restartTimer: NodeJS.Timeout | undefined;
  private fixedShareNoted: number | undefined;
  /** A job that cannot checkpoint, asked to stop: kept running, held at the duty cap (stopping would lose its work). */
  private heldAtCap = false;

  constructor(readonly spec: TrainingJobSpec, private readonly deps: TrainingJobDeps, initial: Knobs) {
    this.restarts = new RestartTracker(spec.restart ?? DEFAULT_RESTART);
    this.mpsSharePct = !this.canCheckpoint && spec.mpsSharePct !== undefined ? spec.mpsSharePct : initial.mpsSharePct;
    this.pacing = initial.pacing;
    this.leaseFile = join(deps.dir, `${spec.id}.lease.json`);
    this.progressFile = join(deps.dir, `${spec.id}.progress.json`);
    this.checkpointFile = join(deps.dir, `${spec.id}.ckpt`);
    this.pacer = spec.pacing === 'signal' ? new SignalPacer(deps.guard, deps.label) : new LeasePacer(this.leaseFile, deps.leaseTtlMs ?? 2000);
    this.pacer.set(this.pacing);
    try {
      if (initial.trainingRunning) this.launch();
    } catch (err) {
      this.pacer.close();
      throw err;
    }
  }

  /** The live process id, if any (tests and logs). */
  get pid(): number | undefined {
    return this.proc?.running() ? this.proc.pid : undefined;
  }

  setPacing(pacing: Pacing): void {
    this.pacing = pacing;
    // Held at the cap (asked to stop, cannot checkpoint): the pacing is kept for when it runs again.
    if (!this.heldAtCap) this.pacer.set(pacing);
  }

  /** True when the job can be stopped and relaunched without losing its work. */
  get canCheckpoint(): boolean {
    return this.spec.checkpoint ?? this.spec.pacing === 'cooperative';
  }

  /**
   * Restarts the job with a new share (checkpoint and relaunch); the share takes effect in the new process.
   * A job that cannot checkpoint keeps its share: a restart would throw its work away.
   */
  setMpsShare(pct: number): Promise<void> {
    if (!this.canCheckpoint) {
      if (pct !== this.mpsSharePct && this.fixedShareNoted !== pct) {
        this.fixedShareNoted = pct;
        this.deps.log(`${this.deps.label}: MPS share stays ${this.mpsSharePct}% (asked ${pct}%): the job cannot checkpoint, so it is never restarted to change it; sleep pacing still applies`);
      }
      return Promise.resolve();
    }
    this.mpsSharePct = pct;
    return this.enqueue(async () => {
      if (!this.proc?.running()) return;
      this.state = 'restarting';
      this.deps.log(`${this.deps.label}: restarting for MPS share ${pct}%`);
      await this.stopProcess();
      if (this.closed) return;
      try {
        this.launch();
      } catch (err) {
        this.state = 'stopped';
        throw err;
      }
    });
  }

  /**
   * Starts or stops the job. A job that cannot checkpoint is not stopped (its work would be lost, as
   * setMpsShare's restart would lose it): it keeps running, held at the duty cap, the least it can be given,
   * until it is asked to run again, which gives it back its pacing. close() stops it whatever it is.
   */
  setRunning(running: boolean): Promise<void> {
    return this.enqueue(async () => {
      if (running && this.heldAtCap) {
        this.heldAtCap = false;
        this.pacer.set(this.pacing);
        this.deps.log(`${this.deps.label}: running again, its pacing restored`);
      }
      if (!running && !this.canCheckpoint && this.proc?.running()) {
        if (this.heldAtCap) return;
        this.heldAtCap = true;
        this.pacer.set({ mode: 'duty', duty: MAX_DUTY, periodMs: this.pacing.mode === 'duty' ? this.pacing.periodMs : GPUCOLO_DEFAULTS.dutyPeriodMs });
        this.deps.log(`${this.deps.label}: kept running at the duty cap (${MAX_DUTY}) instead of stopped: the job cannot checkpoint, so stopping it would lose its work`);
        return;
      }
      if (running && !this.proc?.running() && !this.closed) this.launch();
      else if (!running && this.proc?.running()) {
        await this.stopProcess();
        this.state = 'stopped';
      }
    });
  }

  status(): TrainingStatus {
    this.readProgress();
    return { jobId: this.spec.id, state: this.state, mpsSharePct: this.mpsSharePct, pacing: this.pacing, iterations: this.itersBase + this.itersProc };
  }

  /** Checkpoints and stops the job, releases its pacing; idempotent. */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    return this.enqueue(async () => {
      if (this.proc?.running()) await this.stopProcess();
      this.state = 'stopped';
      this.pacer.close();
    });
  }

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.queue.then(op, op).catch((err) => this.deps.log(`${this.deps.label}: ${(err as Error).message}`));
    this.queue = next;
    return next;
  }

  private launch(): void {
    this.readProgress();
    this.itersBase += this.itersProc;
    this.itersProc = 0;
    const env: Record<string, string> = {
      ...this.spec.env,
      // Ours last: a job started with another pipe directory would silently bypass MPS.
      ...this.deps.mps.clientEnv(),
      ...memoryLimitEnv(this.spec.memoryLimitMiB),
      CUDA_MPS_ACTIVE_THREAD_PERCENTAGE: String(this.mpsSharePct),
      GPUCOLO_JOB_ID: this.spec.id,
      GPUCOLO_CHECKPOINT: this.checkpointFile,
      GPUCOLO_PROGRESS_FILE: this.progressFile,
      ...(this.spec.pacing === 'cooperative' ? { GPUCOLO_LEASE_FILE: this.leaseFile } : {}),
    };
    const proc = WorkloadProcess.launch({
      label: this.deps.label, command: this.spec.command, env, log: this.deps.log, owner: this.deps.guard,
      ...(this.spec.cwd ? { cwd: this.spec.cwd } : {}),
      onStdoutLine: (line) => {
        const n = iterationsFromLine(line);
        if (n !== undefined && this.proc === proc) this.itersProc = Math.max(this.itersProc, n);
      },
    });
    this.proc = proc;
    this.launches++;
    this.state = 'running';
    this.pacer.attach(proc.pid);
    this.pacer.set(this.pacing);
    this.deps.log(`${this.deps.label}: launched pid ${proc.pid} with CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=${this.mpsSharePct} (${this.spec.pacing} pacing${this.spec.memoryLimitMiB ? `, GPU memory limit ${this.spec.memoryLimitMiB} MiB` : ''})`);
    const launchedAtMs = Date.now();
    void proc.exited.then((exit) => {
      if (this.proc !== proc || this.stopping) return;
      this.pacer.detach();
      this.state = 'stopped';
      const ranMs = Date.now() - launchedAtMs;
      const verdict = this.restarts.onExit(exit, ranMs);
      this.deps.log(`${this.deps.label}: pid ${proc.pid} exited on its own (${describeExit(exit)}) after ${ranMs} ms; ${verdict.restart ? `relaunch ${verdict.attempt} of at most ${verdict.limit} in ${verdict.delayMs} ms` : `not relaunched: ${verdict.why}`}`);
      if (!verdict.restart || this.closed) return;
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        void this.enqueue(async () => {
          if (this.closed || this.proc !== proc) return;
          this.launch();
        });
      }, verdict.delayMs);
    });
  }

  /** The stop protocol of one process: pacing off, SIGTERM (checkpoint), terminate_client, SIGKILL last. */
  private async stopProcess(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.stopping = true;
    try {
      this.pacer.detach();
      if (this.pacer instanceof LeasePacer) this.pacer.release();
      const { exit, how } = await proc.stop({
        graceMs: this.spec.checkpointGraceMs ?? 30_000,
        terminateClient: async (pid) => { await this.deps.mps.terminateClient(pid); },
      });
      this.readProgress();
      this.deps.log(`${this.deps.label}: pid ${proc.pid} stopped (${how}, ${exit.signal ?? `code ${exit.code}`})`);
      this.pacer.set(this.pacing);
    } finally {
      this.stopping = false;
    }
  }

  private readProgress(): void {
    const pid = this.proc?.pid;
    if (pid === undefined) return;
    try {
      const p = JSON.parse(readFileSync(this.progressFile, 'utf8')) as { iterations?: unknown; pid?: unknown };
      if (p.pid === pid && typeof p.iterations === 'number' && Number.isFinite(p.iterations)) this.itersProc = Math.max(this.itersProc, p.iterations);
    } catch {
      // No progress file yet (or a write in flight): the last reading stands.
    }
  }
}
