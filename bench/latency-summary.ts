/**
 * Latency samples and the garbage collections that fell in them (`gpucolo bench fleet`, bench/fleet-bench.ts).
 * A collection pauses whatever sample is in flight; with about ten samples past the p99 in 1000, where the few
 * collections of a run fall moves the p99 from one run to the next.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { nearestRank } from '../control/index.ts';

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Timed samples during which the process paused for a garbage collection (node:perf_hooks 'gc' entries). */
  inGc: number;
}

/** The garbage collections of the bench process while round trips and floor samples were timed. */
export interface GcSummary {
  pauses: number;
  meanMs: number;
  maxMs: number;
}

/**
 * Sample count, p50, p99 and max of latency samples (ms); with their start times and the collection pauses
 * (start, end; both in time order), how many samples a pause fell in.
 */
export function latencySummary(samples: readonly number[], starts: readonly number[] = [], pauses: ReadonlyArray<readonly [number, number]> = []): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  let inGc = 0;
  for (let i = 0, j = 0; i < starts.length; i++) {
    const end = starts[i]! + samples[i]!;
    while (j < pauses.length && pauses[j]![1] <= starts[i]!) j++;
    if (j < pauses.length && pauses[j]![0] < end) inGc++;
  }
  return { samples: samples.length, p50Ms: nearestRank(sorted, 50), p99Ms: nearestRank(sorted, 99), maxMs: sorted.at(-1) ?? NaN, inGc };
}

/** The collection pauses (start, end; performance.now() ms) between start() and stop(), in time order; close() lets go. */
export function gcPauses(): { start(): void; stop(): Promise<Array<[number, number]>>; close(): void } {
  const pauses: Array<[number, number]> = [];
  const gcs = new PerformanceObserver((list) => { for (const e of list.getEntries()) pauses.push([e.startTime, e.startTime + e.duration]); });
  let t0 = Infinity;
  return {
    start() {
      t0 = performance.now();
      gcs.observe({ entryTypes: ['gc'] });
    },
    async stop() {
      // The entries of the last collections are delivered after them, on a later turn of the event loop.
      await new Promise((r) => setTimeout(r, 20));
      gcs.disconnect();
      return pauses.filter(([a]) => a >= t0).sort((a, b) => a[0] - b[0]);
    },
    close() {
      gcs.disconnect();
    },
  };
}

/** Count, mean and longest of collection pauses. */
export function gcSummary(pauses: ReadonlyArray<readonly [number, number]>): GcSummary {
  const ms = pauses.map(([a, b]) => b - a);
  return { pauses: ms.length, meanMs: ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : 0, maxMs: ms.length ? Math.max(...ms) : 0 };
}
