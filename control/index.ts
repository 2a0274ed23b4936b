/** control/: the pure control laws of gpucolo. Everything a caller needs is exported from here. */
import {
  createConservative,
  createGslice,
  createNoColocation,
  createSimple,
  type FixedOptions,
  type GsliceOptions,
} from './baselines.ts';
import { createGpucolo, type GpucoloOptions } from './gpucolo.ts';
import { createPaper, type PaperOptions } from './paper.ts';
import { POLICY_NAMES, type Policy, type PolicyName } from './types.ts';

export * from './types.ts';
export * from './window.ts';
export * from './tightest.ts';
export { clamp, pacingValue, samePacing, trainingActive } from './common.ts';
export { feedforward, type FeedforwardOptions, type FeedforwardResult } from './feedforward.ts';
export { createGpucolo, GPUCOLO_DEFAULTS, resolveGpucoloOptions, type GpucoloOptions, type GpucoloState } from './gpucolo.ts';
export { createPaper, PAPER_DEFAULTS, type PaperOptions, type PaperState } from './paper.ts';
export {
  createConservative,
  createGslice,
  createNoColocation,
  createSimple,
  GSLICE_DEFAULTS,
  type FixedOptions,
  type GsliceOptions,
  type GsliceState,
} from './baselines.ts';
export { linePrior, lineUpdate, type LineEstimate } from './rls.ts';
export * from './fleet-planner.ts';
export * from './fleet-view.ts';
export * from './latency-seconds.ts';

/** Options each policy accepts (all optional; see each *_DEFAULTS). */
export interface PolicyOptionsByName {
  gpucolo: Partial<GpucoloOptions>;
  'gpucolo-paper': Partial<PaperOptions>;
  /** The paper's controllers and periods steering p99 (PaperOptions with metric 'p99'). */
  'gpucolo-paper-p99': Partial<Omit<PaperOptions, 'metric'>>;
  gslice: Partial<GsliceOptions>;
  simple: Partial<FixedOptions>;
  conservative: Partial<FixedOptions>;
  'no-colocation': Partial<Pick<FixedOptions, 'innerPeriodMs'>>;
}

/** True when `name` is one of POLICY_NAMES (for CLI and wire input). */
export function isPolicyName(name: string): name is PolicyName {
  return (POLICY_NAMES as readonly string[]).includes(name);
}

/** Build a policy by name. `gpucolo-paper-p99` is `gpucolo-paper` with `{ metric: 'p99' }`. */
export function createPolicy<N extends PolicyName>(name: N, options?: PolicyOptionsByName[N]): Policy {
  switch (name) {
    case 'gpucolo':
      return createGpucolo(options as Partial<GpucoloOptions>);
    case 'gpucolo-paper':
      return createPaper(options as Partial<PaperOptions>);
    case 'gpucolo-paper-p99':
      return createPaper({ ...(options as Partial<PaperOptions>), metric: 'p99' });
    case 'gslice':
      return createGslice(options as Partial<GsliceOptions>);
    case 'simple':
      return createSimple(options as Partial<FixedOptions>);
    case 'conservative':
      return createConservative(options as Partial<FixedOptions>);
    case 'no-colocation':
      return createNoColocation(options as Partial<FixedOptions>);
    default:
      throw new RangeError(`unknown policy: ${String(name)}`);
  }
}
