/**
 * Scalar recursive least squares with forgetting, for re-identifying a plant slope online.
 * We fit differences, dy = m * dx, not levels y = m * x + n: the offset n moves with load (a burst shifts it),
 * and differencing removes it, so a load step does not corrupt the slope. Pure: state in, state out.
 */

export interface SlopeEstimate {
  /** Current slope estimate. */
  m: number;
  /** Estimate variance in units of the noise variance (RLS's P). */
  p: number;
}

/** Prior estimate: slope m0 with standard deviation sdM relative to a noise standard deviation sdNoise. */
export function slopePrior(m0: number, sdM: number, sdNoise: number): SlopeEstimate {
  return { m: m0, p: (sdM / sdNoise) ** 2 };
}

/** One RLS update with regressor dx and observation dy; forgetting in (0, 1] (1 = never forget). */
export function slopeUpdate(e: SlopeEstimate, dx: number, dy: number, forgetting: number): SlopeEstimate {
  const k = (e.p * dx) / (forgetting + dx * dx * e.p);
  const m = e.m + k * (dy - e.m * dx);
  const p = (e.p - k * dx * e.p) / forgetting;
  return { m, p };
}
