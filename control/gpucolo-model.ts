/**
 * gpucolo's online plant model: what the outer tier uses to pick the MPS share in one move instead of
 * walking towards it step by step, and what the inner tier uses to size its safety margin.
 *
 * Training pressure on inference is summarised by one number, x = (1 - duty) * (share/100)^gamma: the time
 * training is awake times the interference of its share (gamma > 1: interference grows faster than the
 * share; 1.6 on the RTX 3090 profile). Locally, the controlled latency is
 *     L = L0 + k * x
 * L0, the latency with training out of the way, is MEASURED: every MPS change restarts training, and the
 * windows while it restarts are exactly inference alone (re-identified on every restart, so a workload
 * change shows up at the next one). k is re-identified at every outer decision from where the inner tier
 * holds the latency now. Training throughput goes as (1 - duty) * share^beta (beta = 0.5), so for the same
 * pressure x a lower share with less sleep trains more: the outer tier moves to the share at which the
 * inner tier would need no sleep at all, x* = (target - L0) / k, less a safety factor, when the predicted
 * gain pays for the restart.
 *
 * The margin: p99 over 1 s is a noisy estimate; the inner tier steers a target below the SLO by a margin
 * proportional to the measured noise (the relative spread of the 200 ms windows' tail around the 1 s
 * estimate, an EWMA), within [marginMinPct, marginMaxPct]. A steady closed-loop load gets a thin margin
 * and keeps its training; a bursty Poisson load gets a wide one.
 */
import { clamp } from './common.ts';

/** Pressure x of (duty, share). */
export function pressure(duty: number, sharePct: number, gamma: number): number {
  return (1 - duty) * Math.pow(sharePct / 100, gamma);
}

/** Share (percent, real) at which pressure x needs no sleep. */
export function shareForPressure(x: number, gamma: number): number {
  return 100 * Math.pow(Math.max(0, x), 1 / gamma);
}

/** Duty that gives pressure x at a share. */
export function dutyForPressure(x: number, sharePct: number, gamma: number): number {
  const full = Math.pow(sharePct / 100, gamma);
  return full > 0 ? 1 - x / full : 1;
}

/** Relative training throughput of (duty, share). */
export function trainingRate(duty: number, sharePct: number, beta: number): number {
  return (1 - duty) * Math.pow(sharePct / 100, beta);
}

/** EWMA with a first sample taken as is. */
export function ewma(prev: number | null | undefined, sample: number, alpha: number): number {
  return prev === null || prev === undefined ? sample : prev + alpha * (sample - prev);
}

/** Margin (percent) for a measured relative noise. */
export function marginFor(noise: number | null, gain: number, minPct: number, maxPct: number, fallbackPct: number): number {
  if (noise === null) return fallbackPct;
  return clamp(gain * noise * 100, minPct, maxPct);
}
