import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { MAX_DUTY, type Pacing } from '../../control/index.ts';
import type { PauseGuard } from './pause-guard.ts';

/** The inner-tier knob applied to one training job's process. */
export interface Pacer {
  readonly mode: PacingMode;
  /** Applies a sleep setting (milliseconds to take effect). */
  set(pacing: Pacing): void;
  /** Attaches to a newly launched process of the job. */
  attach(pid: number): void;
  /** The process is gone (exited, or about to be restarted): let it run, forget it. */
  detach(): void;
  /** Releases the job for good: no sleep, nothing left paused, files removed. */
  close(): void;
}

export type PacingMode = 'cooperative' | 'signal';

/**
 * Training never sleeps more than this share of the time under signals: a full pause is never commanded.
 * The same cap as the hook's and the simulated GPU's (control's MAX_DUTY).
 */
export const MAX_SIGNAL_DUTY = MAX_DUTY;
/** Awake time between two pauses when the setting is a per-iteration sleep (signals know no iterations). */
export const SIGNAL_AWAKE_MS = 200;

/** What the cooperative hook reads from the lease file. */
export interface Lease {
  v: 1;
  mode: Pacing['mode'];
  /** Fraction of wall time to sleep (duty mode). */
  duty: number;
  periodMs: number;
  /** Sleep after each iteration (per-iteration mode). */
  sleepMs: number;
  /** After this instant the hook sleeps no more, whatever the file says: a dead runner never stalls training. */
  expiresUnixMs: number;
  runnerPid: number;
}

export function leaseFor(pacing: Pacing, nowUnixMs: number, ttlMs: number): Lease {
  return {
    v: 1, mode: pacing.mode,
    duty: pacing.mode === 'duty' ? pacing.duty : 0,
    periodMs: pacing.mode === 'duty' ? pacing.periodMs : 0,
    sleepMs: pacing.mode === 'per-iteration' ? pacing.sleepMs : 0,
    expiresUnixMs: nowUnixMs + ttlMs,
    runnerPid: process.pid,
  };
}

const NO_SLEEP: Pacing = { mode: 'duty', duty: 0, periodMs: 200 };

/**
 * Cooperative pacing: the runner keeps a lease file fresh (renewed every ttl/3); the training loop's hook
 * (workloads/gpucolo_hook.py) sleeps as it says while the lease is unexpired.
 */
export class LeasePacer implements Pacer {
  readonly mode = 'cooperative' as const;
  private pacing: Pacing = NO_SLEEP;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly leaseFile: string, private readonly ttlMs = 2000, private readonly nowUnixMs: () => number = Date.now) {
    this.write();
    this.timer = setInterval(() => this.write(), Math.max(50, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  set(pacing: Pacing): void {
    this.pacing = pacing;
    this.write();
  }

  attach(): void {
    this.write();
  }

  detach(): void {}

  /** Sleep off now (a job being checkpointed must not sleep through its deadline). */
  release(): void {
    this.set(NO_SLEEP);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    rmSync(this.leaseFile, { force: true });
  }

  private write(): void {
    if (this.closed) return;
    const tmp = `${this.leaseFile}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify(leaseFor(this.pacing, this.nowUnixMs(), this.ttlMs)));
      renameSync(tmp, this.leaseFile);
    } catch {
      // A lease that cannot be written expires: the hook stops sleeping, which is the safe side.
    }
  }
}

/** Pause and awake times of one signal cycle for a setting. */
export function signalCycle(p: Pacing): { stopMs: number; runMs: number } {
  if (p.mode === 'duty') {
    const duty = Math.min(MAX_SIGNAL_DUTY, Math.max(0, p.duty));
    const stopMs = duty * p.periodMs;
    return { stopMs, runMs: Math.max(p.periodMs - stopMs, p.periodMs * (1 - MAX_SIGNAL_DUTY)) };
  }
  const stopMs = Math.max(0, p.sleepMs);
  // Keep the pause share under MAX_SIGNAL_DUTY even for a very long per-iteration sleep.
  return { stopMs, runMs: Math.max(SIGNAL_AWAKE_MS, (stopMs * (1 - MAX_SIGNAL_DUTY)) / MAX_SIGNAL_DUTY) };
}

/**
 * Transparent pacing for jobs that cannot be changed: SIGSTOP / SIGCONT duty cycling of the job's process
 * group. Every group is registered with the PauseGuard before its first SIGSTOP.
 */
export class SignalPacer implements Pacer {
  readonly mode = 'signal' as const;
  private pacing: Pacing = NO_SLEEP;
  private pid: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private paused = false;
  /** SIGSTOPs sent so far (tests and logs). */
  pauses = 0;

  constructor(private readonly guard: PauseGuard, private readonly label: string) {}

  /** A new setting takes effect at the next phase of the cycle; a setting with no sleep resumes at once. */
  set(pacing: Pacing): void {
    this.pacing = pacing;
    if (signalCycle(pacing).stopMs < 1) this.stopCycle();
    else if (this.timer === undefined) this.startCycle();
  }

  attach(pid: number): void {
    this.detach();
    this.pid = pid;
    this.guard.register(pid, this.label);
    if (signalCycle(this.pacing).stopMs >= 1) this.startCycle();
  }

  detach(): void {
    this.stopCycle();
    if (this.pid !== undefined) this.guard.unregister(this.pid);
    this.pid = undefined;
  }

  close(): void {
    this.pacing = NO_SLEEP;
    this.detach();
  }

  /** Awake for runMs, then stopped for stopMs, read afresh from the setting at every phase. */
  private startCycle(): void {
    if (this.pid === undefined) return;
    const pause = () => {
      const { stopMs } = signalCycle(this.pacing);
      if (stopMs < 1) { this.timer = undefined; return; }
      this.signal('SIGSTOP');
      this.paused = true;
      this.pauses++;
      this.timer = setTimeout(() => {
        this.signal('SIGCONT');
        this.paused = false;
        this.timer = setTimeout(pause, signalCycle(this.pacing).runMs);
      }, stopMs);
    };
    this.timer = setTimeout(pause, signalCycle(this.pacing).runMs);
  }

  /** Stops cycling and leaves the process running. */
  private stopCycle(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.paused || this.pid !== undefined) this.signal('SIGCONT');
    this.paused = false;
  }

  private signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    if (this.pid === undefined) return;
    for (const target of [-this.pid, this.pid]) {
      try { process.kill(target, sig); } catch { /* the group or process is gone */ }
    }
  }
}
