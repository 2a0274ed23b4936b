import type { ExitInfo } from './workload-process.ts';

/** When a workload that exited on its own is launched again (the workloads file's `restart` fields). */
export interface RestartPolicy {
  /** on-failure: relaunch after a non-zero exit or a signal; never: leave it down. */
  mode: 'on-failure' | 'never';
  /** Delay before the first relaunch; doubled for each failure in a row, at most maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Relaunches in a row before giving up. */
  limit: number;
  /** A run at least this long was healthy: the next failure counts from the start again. */
  healthyRunMs: number;
}

export const DEFAULT_RESTART: RestartPolicy = { mode: 'on-failure', backoffMs: 1000, maxBackoffMs: 60_000, limit: 5, healthyRunMs: 60_000 };

export type RestartVerdict =
  | { restart: true; delayMs: number; attempt: number; limit: number }
  | { restart: false; why: string };

/** How an exit reads in logs and events: `code 3`, `signal SIGKILL`. */
export function describeExit(exit: ExitInfo): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/**
 * The restart decisions of one workload, in order (pure apart from its count). A clean exit (code 0) is a
 * job that finished or a service that chose to stop: never relaunched.
 */
export class RestartTracker {
  private failuresInRow = 0;
  constructor(readonly policy: RestartPolicy = DEFAULT_RESTART) {}

  /** What to do after the process exited on its own, having run `ranMs`. */
  onExit(exit: ExitInfo, ranMs: number): RestartVerdict {
    if (!exit.signal && exit.code === 0) return { restart: false, why: 'it exited cleanly (code 0)' };
    if (this.policy.mode === 'never') return { restart: false, why: 'its restart policy is never' };
    if (ranMs >= this.policy.healthyRunMs) this.failuresInRow = 0;
    if (this.failuresInRow >= this.policy.limit) {
      return { restart: false, why: `it failed ${this.failuresInRow + 1} times in a row, past its restart limit of ${this.policy.limit}` };
    }
    const delayMs = Math.min(this.policy.maxBackoffMs, this.policy.backoffMs * 2 ** this.failuresInRow);
    this.failuresInRow++;
    return { restart: true, delayMs, attempt: this.failuresInRow, limit: this.policy.limit };
  }
}
