import { MAX_DUTY, type Pacing } from '../../control/index.ts';
import type { TrainingRunState, TrainingStatus } from '../index.ts';

/**
 * Hardware never pauses training outright: a duty above MAX_DUTY acts as MAX_DUTY (as the signal pacer and the
 * hook cap it), and a per-iteration sleep lasts at most MAX_DUTY / (1 - MAX_DUTY) times the iteration before it
 * (sleep / (sleep + iteration) <= MAX_DUTY, as the signal pacer keeps it).
 */
const MAX_SLEEP_PER_AWAKE = MAX_DUTY / (1 - MAX_DUTY);

/** The duty a pacing really gets: never more than MAX_DUTY. */
function effectiveDuty(p: Pacing & { mode: 'duty' }): number {
  return Math.min(p.duty, MAX_DUTY);
}

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
  /** When the job last woke (or started running). */
  private awakeSinceMs = 0;
  /** per-iteration pacing: awake time of the iteration before the current sleep (bounds the sleep). */
  private lastAwakeMs = Infinity;

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
      if (!this.awake) t = Math.min(t, this.sleepEndMs(p));
    } else {
      const duty = effectiveDuty(p);
      if (duty > 0) {
        const edge = this.awake ? this.cycleStartMs + (1 - duty) * p.periodMs : this.cycleStartMs + p.periodMs;
        t = Math.min(t, edge);
      }
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
      if (!this.awake && this.sleepEndMs(p) <= nowMs) this.wake(nowMs);
      return;
    }
    const duty = effectiveDuty(p);
    if (duty <= 0) return;
    if (this.awake && this.cycleStartMs + (1 - duty) * p.periodMs <= nowMs) {
      this.awake = false;
    } else if (!this.awake && this.cycleStartMs + p.periodMs <= nowMs) {
      this.cycleStartMs += p.periodMs;
      this.wake(nowMs);
    }
  }

  /** The iteration in flight finished at nowMs: count it exactly and start the per-iteration sleep. */
  onIterationDone(nowMs: number): void {
    // Called when progress has just reached the next whole iteration, give or take float rounding.
    this.progress = Math.round(this.progress);
    this.lastAwakeMs = nowMs - this.awakeSinceMs;
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

  /** Awake first: no pacing keeps a (re)started job asleep (the duty cap). */
  private beginRunning(nowMs: number): void {
    this.cycleStartMs = nowMs;
    this.wake(nowMs);
  }

  private wake(nowMs: number): void {
    this.awake = true;
    this.awakeSinceMs = nowMs;
  }

  /** End of the current per-iteration sleep: the setting, bounded by the duty cap. */
  private sleepEndMs(p: Pacing & { mode: 'per-iteration' }): number {
    return this.sleepStartMs + Math.min(p.sleepMs, this.lastAwakeMs * MAX_SLEEP_PER_AWAKE);
  }

  private applyPacing(next: Pacing, nowMs: number): void {
    const old = this.pacing;
    this.pacing = next;
    if (this.state !== 'running') return; // used when the process (re)starts
    if (next.mode === 'duty') {
      this.beginRunning(nowMs); // a new duty period starts, awake first
    } else if (!this.awake && (old.mode === 'duty' || this.sleepEndMs(next) <= nowMs)) {
      this.wake(nowMs); // the sleep in progress is already long enough under the new setting
    }
  }
}
