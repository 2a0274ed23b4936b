// SLO attainment over whole seconds and a run-long latency histogram, for the inference actor (actors/inference.ts).
// Pure: plain data in, plain data out.
import { nearestRank } from './window.ts';

/**
 * SLO attainment over 1 s windows: the fraction of whole seconds (device clock) whose p99 latency is within
 * the SLO. Plain data so it lives in an actor's snapshot.
 */
export interface SecondWindows {
  /** Start of the second being filled (ms), or -1 before the first sample. */
  currentStartMs: number;
  currentLatenciesMs: number[];
  windows: number;
  windowsMet: number;
}

export function emptySecondWindows(): SecondWindows {
  return { currentStartMs: -1, currentLatenciesMs: [], windows: 0, windowsMet: 0 };
}

/** Nearest-rank percentile of unsorted samples (q in 0..1); 0 for no samples. */
export function percentile(samples: number[], q: number): number {
  return nearestRank([...samples].sort((a, b) => a - b), q * 100);
}

/**
 * Adds completions (by finish time) and closes every second that `nowMs` has passed. A second with no
 * completion counts as met (nothing waited too long in it), the convention used by the benchmarks too.
 */
export function addToSeconds(
  state: SecondWindows,
  completions: ReadonlyArray<{ tMs: number; latencyMs: number }>,
  nowMs: number,
  sloMs: number,
): SecondWindows {
  let { currentStartMs, windows, windowsMet } = state;
  let current = state.currentLatenciesMs.slice();
  if (currentStartMs < 0) currentStartMs = Math.floor((completions[0]?.tMs ?? nowMs) / 1000) * 1000;
  const close = () => {
    windows++;
    if (percentile(current, 0.99) <= sloMs) windowsMet++;
    current = [];
    currentStartMs += 1000;
  };
  for (const c of completions) {
    while (c.tMs >= currentStartMs + 1000) close();
    current.push(c.latencyMs);
  }
  while (nowMs >= currentStartMs + 1000) close();
  return { currentStartMs, currentLatenciesMs: current, windows, windowsMet };
}

/** Run-long latency histogram with ~1% wide log buckets: a run's p99 without keeping every sample. */
export type LatencyHistogram = Record<string, number>;
const LOG_STEP = Math.log(1.01);

/** Adds samples to a histogram (returns a new one: snapshots stay immutable). */
export function addToHistogram(h: LatencyHistogram, latenciesMs: number[]): LatencyHistogram {
  if (latenciesMs.length === 0) return h;
  const out = { ...h };
  for (const ms of latenciesMs) {
    const b = String(Math.floor(Math.log(Math.max(ms, 0.001)) / LOG_STEP));
    out[b] = (out[b] ?? 0) + 1;
  }
  return out;
}

/** The q-quantile of a histogram (upper edge of its bucket, so never under-reported). */
export function histogramQuantile(h: LatencyHistogram, q: number): number {
  const entries = Object.entries(h).map(([b, n]) => [Number(b), n] as const).sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((a, [, n]) => a + n, 0);
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [b, n] of entries) {
    seen += n;
    if (seen >= rank) return Math.exp((b + 1) * LOG_STEP);
  }
  return Math.exp((entries[entries.length - 1]![0] + 1) * LOG_STEP);
}
