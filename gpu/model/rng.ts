/**
 * A small seeded PRNG (mulberry32) so the simulated GPU is reproducible: the same seed and the same
 * sequence of calls give bit-identical results on every machine. Math.random is never used.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Exponential draw with the given mean (e.g. a Poisson inter-arrival time in ms). */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Standard normal draw (Box-Muller; one pair per call keeps the call count simple to reason about). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log(0) impossible
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** Lognormal multiplier with mean exactly 1, so jitter never shifts the mean service time. */
  lognormalUnitMean(sigma: number): number {
    return sigma === 0 ? 1 : Math.exp(sigma * this.normal() - (sigma * sigma) / 2);
  }
}

/** A seed for an independent stream (one per service), so adding a service leaves the others' draws alone. */
export function deriveSeed(seed: number, stream: number): number {
  // splitmix32-style avalanche of (seed, stream)
  let z = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
