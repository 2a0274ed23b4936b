/**
 * Recursive least squares with forgetting for the paper's model y = m*x + n (two parameters), to re-identify
 * the slope m online. Levels, not differences: in closed loop each x depends on the previous period's noise,
 * so regressing differences correlates regressor and noise and biases m; levels stay unbiased for white noise,
 * and forgetting lets n follow load drift. Pure: state in, state out.
 */

export interface LineEstimate {
  m: number;
  n: number;
  /** Covariance in units of the noise variance, row-major [pmm, pmn, pnn] (symmetric). */
  p: [number, number, number];
}

/** Prior: slope m0 (sd sdM) and offset n0 (sd sdN), relative to a noise standard deviation sdNoise. */
export function linePrior(m0: number, n0: number, sdM: number, sdN: number, sdNoise: number): LineEstimate {
  return { m: m0, n: n0, p: [(sdM / sdNoise) ** 2, 0, (sdN / sdNoise) ** 2] };
}

/** One RLS step with observation y at regressor x; forgetting in (0, 1] (1 = never forget). */
export function lineUpdate(e: LineEstimate, x: number, y: number, forgetting: number): LineEstimate {
  const [a, b, c] = e.p;
  // P * phi with phi = [x, 1].
  const g0 = a * x + b;
  const g1 = b * x + c;
  const denom = forgetting + x * g0 + g1;
  const k0 = g0 / denom;
  const k1 = g1 / denom;
  const err = y - (e.m * x + e.n);
  return {
    m: e.m + k0 * err,
    n: e.n + k1 * err,
    p: [(a - k0 * g0) / forgetting, (b - k0 * g1) / forgetting, (c - k1 * g1) / forgetting],
  };
}
