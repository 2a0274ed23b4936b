import type { Pacing } from '../../control/types.ts';
import type { TrainingRunState, TrainingStatus } from '../types.ts';

/** What a training job is doing right now: only an awake job interferes and makes progress. */
export type TrainingPhase = 'awake' | 'asleep' | 'restarting' | 'stopped';

/**
 * One simulated training job: a small state machine over explicit time. The GpuModel owns the clock;
 * it asks for the next transition time, advances progress at the rate it computes, and calls back
 * when a transition is due. Progress is counted in (real-valued) iterations; status reports whole ones.
 */
export class TrainingJob {
  state: TrainingRunState;
  awake = false;
  /** Completed iterations, real-valued: duty pacing advances it continuously. */
  progress = 0;
  /** Iterations per ms while awake, set by the model from shares, interference and inference load. */
  ratePerMs = 0;
  private pending: { pacing: Pacing; atMs: number } | null = null;
  private restartUntilMs = Infinity;
  /** per-iteration pacing: when the current sleep began. */
  private sleepStartMs = 0;
  /** duty pacing: when the current period began. */
  private cycleStartMs = 0;

  constructor(
    readonly id: string,
    public sharePct: number,
    public pacing: Pacing,
    running: boolean,
    nowMs: number,
  ) {
    this.state = running ? 'running' : 'stopped';
    if (running) this.beginRunning(nowMs);
  }

  /** Phase for tests and telemetry. */
  get phase(): TrainingPhase {
    if (this.state !== 'running') return this.state;
    return this.awake ? 'awake' : 'asleep';
  }

  /** True when the job occupies the GPU (and so slows inference). */
  get interfering(): boolean {
    return this.state === 'running' && this.awake;
  }

  /** Status in the GpuDevice contract's shape. */
  status(): TrainingStatus {
    // A tiny epsilon: duty pacing sums floats, and 2.9999999999 iterations is really 3.
    return { jobId: this.id, state: this.state, mpsSharePct: this.sharePct, pacing: this.pacing, iterations: Math.floor(this.progress + 1e-9) };
  }

  /** Next clock-driven transition: pacing applied, restart over, sleep over, duty edge. */
  nextTimedMs(): number {
    let t = this.pending ? this.pending.atMs : Infinity;
    if (this.state === 'restarting') return Math.min(t, this.restartUntilMs);
    if (this.state !== 'running') return t;
    const p = this.pacing;
    if (p.mode === 'per-iteration') {
      if (!this.awake) t = Math.min(t, this.sleepStartMs + p.sleepMs);
    } else if (p.duty > 0 && p.duty < 1) {
      const edge = this.awake ? this.cycleStartMs + (1 - p.duty) * p.periodMs : this.cycleStartMs + p.periodMs;
      t = Math.min(t, edge);
    }
    return t;
  }

  /** When the current iteration ends and a per-iteration sleep begins; Infinity when no sleep follows. */
  nextSleepStartMs(nowMs: number): number {
    if (!this.interfering || this.pacing.mode !== 'per-iteration' || this.pacing.sleepMs <= 0) return Infinity;
    if (this.ratePerMs <= 0) return Infinity;
    return nowMs + (Math.floor(this.progress) + 1 - this.progress) / this.ratePerMs;
  }

  /** Progress for dtMs at the current rate. */
  advance(dtMs: number): void {
    if (this.interfering) this.progress += dtMs * this.ratePerMs;
  }

  /** Run every clock-driven transition due at nowMs. */
  onTimed(nowMs: number): void {
    if (this.pending && this.pending.atMs <= nowMs) {
      const next = this.pending.pacing;
      this.pending = null;
      this.applyPacing(next, nowMs);
    }
    if (this.state === 'restarting' && this.restartUntilMs <= nowMs) {
      this.state = 'running';
      this.restartUntilMs = Infinity;
      this.beginRunning(nowMs);
    }
    if (this.state !== 'running') return;
    const p = this.pacing;
    if (p.mode === 'per-iteration') {
      if (!this.awake && this.sleepStartMs + p.sleepMs <= nowMs) this.awake = true;
      return;
    }
    if (p.duty <= 0 || p.duty >= 1) return;
    if (this.awake && this.cycleStartMs + (1 - p.duty) * p.periodMs <= nowMs) {
      this.awake = false;
    } else if (!this.awake && this.cycleStartMs + p.periodMs <= nowMs) {
      this.cycleStartMs += p.periodMs;
      this.awake = true;
    }
  }

  /** The iteration in flight finished at nowMs: count it exactly and start the per-iteration sleep. */
  onIterationDone(nowMs: number): void {
    // Called when progress has just reached the next whole iteration, give or take float rounding.
    this.progress = Math.round(this.progress);
    this.awake = false;
    this.sleepStartMs = nowMs;
  }

  /** Ask for a new pacing; it takes effect at atMs (the sleep-change cost). */
  requestPacing(pacing: Pacing, atMs: number): void {
    this.pending = { pacing, atMs };
  }

  /** Restart the process (MPS share change, or start after stop): no progress until nowMs + restartMs. */
  restart(nowMs: number, restartMs: number): void {
    // The process dies: the iteration in flight is lost.
    this.progress = Math.floor(this.progress + 1e-9);
    this.state = 'restarting';
    this.awake = false;
    this.restartUntilMs = nowMs + restartMs;
  }

  /** Stop the process: no interference, no progress, nothing left paused. */
  stop(): void {
    this.progress = Math.floor(this.progress + 1e-9);
    this.state = 'stopped';
    this.awake = false;
    this.restartUntilMs = Infinity;
  }

  private beginRunning(nowMs: number): void {
    const p = this.pacing;
    this.cycleStartMs = nowMs;
    this.awake = p.mode === 'per-iteration' || p.duty < 1;
  }

  private applyPacing(next: Pacing, nowMs: number): void {
    const old = this.pacing;
    this.pacing = next;
    if (this.state !== 'running') return; // used when the process (re)starts
    if (next.mode === 'duty') {
      this.beginRunning(nowMs); // a new duty period starts, awake first
    } else if (!this.awake && (old.mode === 'duty' || this.sleepStartMs + next.sleepMs <= nowMs)) {
      this.awake = true; // the sleep in progress is already long enough under the new setting
    }
  }
}
