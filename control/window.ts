/**
 * Latency windows: percentiles of one inner period, merging windows for the outer period, and SLO attainment.
 * Pure: numbers in, numbers out.
 */
import type { LatencyWindow } from './types.ts';

/** The latency statistics a controller may regulate or a report may score. */
export const LATENCY_METRICS = ['mean', 'p50', 'p95', 'p99', 'max'] as const;
export type LatencyMetric = (typeof LATENCY_METRICS)[number];

/**
 * Nearest-rank percentile of an ascending-sorted array: the smallest sample with at least p% of the samples
 * at or below it, i.e. sorted[ceil(p/100 * n) - 1]. Always a real sample (never interpolated), so p99 of a
 * small window is its maximum: the honest, conservative reading for an SLO. Returns 0 for an empty array.
 */
export function nearestRank(sortedMs: readonly number[], pct: number): number {
  const n = sortedMs.length;
  if (n === 0) return 0;
  const rank = Math.ceil((pct / 100) * n);
  return sortedMs[Math.min(n, Math.max(1, rank)) - 1]!;
}

/**
 * Summarise one window of one service. Percentiles are nearest-rank (see `nearestRank`).
 * A window with no finished requests has count 0 and every latency field 0: callers must look at `count`.
 * `arrivals` is the number of requests that arrived in the window; rateRps = arrivals / window seconds.
 */
export function summarize(
  serviceId: string,
  sloMs: number,
  latenciesMs: readonly number[],
  arrivals: number,
  windowMs: number,
): LatencyWindow {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const count = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    serviceId,
    sloMs,
    count,
    meanMs: count > 0 ? sum / count : 0,
    p50Ms: nearestRank(sorted, 50),
    p95Ms: nearestRank(sorted, 95),
    p99Ms: nearestRank(sorted, 99),
    maxMs: count > 0 ? sorted[count - 1]! : 0,
    rateRps: windowMs > 0 ? arrivals / (windowMs / 1000) : 0,
    windowMs,
  };
}

/** The value of `metric` in a window (ms). */
export function metricOf(w: LatencyWindow, metric: LatencyMetric): number {
  switch (metric) {
    case 'mean':
      return w.meanMs;
    case 'p50':
      return w.p50Ms;
    case 'p95':
      return w.p95Ms;
    case 'p99':
      return w.p99Ms;
    case 'max':
      return w.maxMs;
  }
}

// Knots of the piecewise-linear CDF we rebuild from a summary. The lower anchor is a guess (the summary has no
// minimum): p50 minus the p50..p95 spread, floored at 0. Only the merged p50 is sensitive to that guess.
const KNOT_Q = [0, 0.5, 0.95, 0.99, 1] as const;
const KNOTS = KNOT_Q.length;

/**
 * Scratch of one merge (mergeWindows runs to its end before the next one starts, and keeps none of it): the
 * parts' knots (KNOTS a part, part i's at i * KNOTS), their weights, and all the knots in ascending order. A merge
 * runs on every decision, on the control round trip's path: arrays and objects per part and per quantile were
 * most of what a merge allocated.
 */
let partXs = new Float64Array(8 * KNOTS);
let partWeights = new Float64Array(8);
let sortedKs = new Float64Array(8 * KNOTS);

/** Writes the knots of `w` into `xs` at `at`. */
function knotsInto(w: LatencyWindow, xs: Float64Array, at: number): void {
  const lo = Math.max(0, Math.min(w.p50Ms, w.p50Ms - (w.p95Ms - w.p50Ms)));
  xs[at] = lo;
  xs[at + 1] = w.p50Ms;
  xs[at + 2] = w.p95Ms;
  xs[at + 3] = w.p99Ms;
  xs[at + 4] = w.maxMs;
  // Monotone by construction even if a producer sent slightly inconsistent percentiles.
  for (let i = 1; i < KNOTS; i++) xs[at + i] = Math.max(xs[at + i]!, xs[at + i - 1]!);
}

/**
 * Fraction of a window's samples at or below x, under the piecewise-linear reconstruction through its knots
 * (`xs` from `at`); with `left`, below x (the CDF's limit from the left at x: less than at x only where two knots
 * coincide at x, a jump).
 */
function cdfAt(xs: Float64Array, at: number, x: number, left: boolean): number {
  const last = xs[at + KNOTS - 1]!;
  if (left ? x <= xs[at]! : x < xs[at]!) return 0;
  if (left ? x > last : x >= last) return 1;
  // The one segment x lies in: [a, b) at x, (a, b] from the left (a segment of two coinciding knots holds none).
  for (let i = KNOTS - 2; i >= 0; i--) {
    const a = xs[at + i]!;
    const b = xs[at + i + 1]!;
    if (left ? x > a && x <= b : x >= a && x < b) return KNOT_Q[i]! + ((KNOT_Q[i + 1]! - KNOT_Q[i]!) * (x - a)) / (b - a);
  }
  return left ? 1 : 0;
}

/** The knots of the first `parts` parts in ascending order, into sortedKs, by insertion (each part's are ascending already; no comparator calls). */
function sortKnots(parts: number): number {
  const ks = sortedKs;
  let n = 0;
  for (let i = 0; i < parts * KNOTS; i++) {
    const x = partXs[i]!;
    let k = n++;
    while (k > 0 && ks[k - 1]! > x) { ks[k] = ks[k - 1]!; k--; }
    ks[k] = x;
  }
  return n;
}

/**
 * Smallest x whose mixture CDF reaches q, over the first `parts` parts (their knots sorted: sortKnots, `n` of
 * them). The mixture is piecewise linear between the parts' knots (each part's CDF is, and jumps only where two of
 * its knots coincide): a binary search over the sorted knots finds the first one at which the mixture reaches q,
 * then the answer is read on the segment before it, exactly, by the line through the mixture's value at the
 * segment's start and its limit at the segment's end (or it is the knot itself, when q falls in a jump there).
 * Plain loops over the merge's scratch: this runs on every controller decision, on the control round trip's path
 * (it replaced a bisection of 60 halvings, 180 CDF readings of every part per merge, most of the merge's time).
 */
function mixtureQuantile(parts: number, n: number, total: number, q: number): number {
  const ks = sortedKs;
  if (massAt(parts, total, ks[0]!, false) >= q) return ks[0]!;
  // The first knot at which the mixture reaches q: the mass at the last knot is 1.
  let lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (massAt(parts, total, ks[mid]!, false) >= q) hi = mid;
    else lo = mid;
  }
  const a = ks[lo]!, b = ks[hi]!;
  const atA = massAt(parts, total, a, false);
  const beforeB = massAt(parts, total, b, true);
  if (beforeB < q) return b; // q falls in the jump at b
  return Math.min(b, a + ((q - atA) / (beforeB - atA)) * (b - a));
}

/**
 * The mixture's CDF at x over the first `parts` parts, or its limit from the left (`left`): the value just below
 * x, which differs from the value at x only where a part jumps (two of its knots at x).
 */
function massAt(parts: number, total: number, x: number, left: boolean): number {
  let s = 0;
  for (let i = 0; i < parts; i++) s += partWeights[i]! * cdfAt(partXs, i * KNOTS, x, left);
  return s / total;
}

/**
 * Merge consecutive windows of ONE service into one (the outer period's view).
 * Exact: count (sum), mean (count-weighted), max, rate (arrivals over total time), windowMs (sum).
 * Approximate: p50/p95/p99. The raw samples are gone, so each window's CDF is rebuilt piecewise-linearly
 * through (lo,0) (p50,.5) (p95,.95) (p99,.99) (max,1), the count-weighted mixture is formed, and its quantile
 * is found by bisection. Merging identical windows returns their percentiles; the result always lies between
 * the smallest and largest input percentile, unlike averaging p99s (too low) or taking the max (too high).
 * The slo is the smallest seen (conservative) and the serviceId the first's. Throws on an empty list.
 */
export function mergeWindows(ws: readonly LatencyWindow[]): LatencyWindow {
  if (ws.length === 0) throw new RangeError('mergeWindows: no windows');
  const first = ws[0]!;
  // Plain loops, field by field, no spread: merges run every period on the round trip's path (see
  // gpucolo-model.ts atDuty). The sums run in the windows' order, as the reductions they replace did.
  let windowMs = 0, arrivals = 0, sloMs = Infinity, count = 0, parts = 0;
  for (const w of ws) {
    windowMs += w.windowMs;
    arrivals += (w.rateRps * w.windowMs) / 1000;
    sloMs = Math.min(sloMs, w.sloMs);
    if (w.count > 0) { parts++; count += w.count; }
  }
  const rateRps = windowMs > 0 ? arrivals / (windowMs / 1000) : 0;
  if (count === 0) return { serviceId: first.serviceId, sloMs, windowMs, rateRps, count: 0, meanMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 };
  if (partWeights.length < parts) {
    const cap = Math.max(parts, 2 * partWeights.length);
    partXs = new Float64Array(cap * KNOTS);
    partWeights = new Float64Array(cap);
    sortedKs = new Float64Array(cap * KNOTS);
  }
  let meanSum = 0, maxMs = -Infinity, i = 0;
  for (const w of ws) {
    if (!(w.count > 0)) continue;
    knotsInto(w, partXs, i * KNOTS);
    partWeights[i++] = w.count;
    meanSum += w.meanMs * w.count;
    maxMs = Math.max(maxMs, w.maxMs);
  }
  const n = sortKnots(parts);
  return {
    serviceId: first.serviceId, sloMs, windowMs, rateRps,
    count,
    meanMs: meanSum / count,
    p50Ms: mixtureQuantile(parts, n, count, 0.5),
    p95Ms: mixtureQuantile(parts, n, count, 0.95),
    p99Ms: mixtureQuantile(parts, n, count, 0.99),
    maxMs,
  };
}

/** Merge windows per serviceId (first-seen order): the outer period's input for a multi-service GPU. */
export function mergeWindowsByService(ws: readonly LatencyWindow[]): LatencyWindow[] {
  // One service (the common case): its one merge, without grouping.
  let one = true;
  for (let i = 1; i < ws.length && one; i++) one = ws[i]!.serviceId === ws[0]!.serviceId;
  if (one && ws.length > 0) return [mergeWindows(ws)];
  const groups = new Map<string, LatencyWindow[]>();
  for (const w of ws) {
    const g = groups.get(w.serviceId);
    if (g) g.push(w);
    else groups.set(w.serviceId, [w]);
  }
  return [...groups.values()].map(mergeWindows);
}

/** True when the window meets its SLO on `metric`; an empty window (count 0) counts as met. */
export function meetsSlo(w: LatencyWindow, metric: LatencyMetric = 'p99'): boolean {
  return w.count === 0 || metricOf(w, metric) <= w.sloMs;
}

/** Fraction of windows whose `metric` (p99 by default) is at or below the SLO; count-0 windows count as met; 1 for none. */
export function attainment(windows: readonly LatencyWindow[], metric: LatencyMetric = 'p99'): number {
  if (windows.length === 0) return 1;
  return windows.filter((w) => meetsSlo(w, metric)).length / windows.length;
}

/**
 * Streaming accumulator for one service: add samples and arrivals as they come, then `take` a window
 * (which resets it). Holds the raw samples of one inner period only, so percentiles stay exact.
 */
export class LatencyAccumulator {
  private samplesMs: number[] = [];
  private arrivals = 0;

  constructor(
    readonly serviceId: string,
    readonly sloMs: number,
  ) {}

  /** Record one finished request's latency (ms). */
  add(latencyMs: number): void {
    this.samplesMs.push(latencyMs);
  }

  /** Record several finished requests' latencies (ms). */
  addMany(latenciesMs: readonly number[]): void {
    for (const v of latenciesMs) this.samplesMs.push(v);
  }

  /** Record `n` arrivals (requests that entered the queue). */
  arrive(n = 1): void {
    this.arrivals += n;
  }

  /** Samples recorded since the last take. */
  get count(): number {
    return this.samplesMs.length;
  }

  /** Summarise everything since the last take over `windowMs`, and start a new window. */
  take(windowMs: number): LatencyWindow {
    const w = summarize(this.serviceId, this.sloMs, this.samplesMs, this.arrivals, windowMs);
    this.samplesMs = [];
    this.arrivals = 0;
    return w;
  }
}
