/**
 * `gpucolo`: our policy. Inner tier = training sleep duty on the tail (gpucolo-inner.ts), outer tier = training
 * MPS share, moved only when the inner tier sits at a bound (gpucolo-outer.ts). Options: gpucolo-options.ts.
 */
import { gpucoloInner } from './gpucolo-inner.ts';
import { resolveGpucoloOptions, type GpucoloOptions, type GpucoloState } from './gpucolo-options.ts';
import { gpucoloOuter } from './gpucolo-outer.ts';
import { clamp, sharePct } from './common.ts';
import type { Knobs, Policy } from './types.ts';

export { GPUCOLO_DEFAULTS, resolveGpucoloOptions, type GpucoloOptions, type GpucoloState } from './gpucolo-options.ts';

/** Build the gpucolo policy; every period, target, gain and bound is an option (defaults in GPUCOLO_DEFAULTS). */
export function createGpucolo(options: Partial<GpucoloOptions> = {}): Policy<GpucoloState> & { readonly options: GpucoloOptions } {
  const o = resolveGpucoloOptions(options);
  const initialDuty = clamp(o.initialDuty, 0, o.maxDuty);
  return {
    name: 'gpucolo',
    options: o,
    innerPeriodMs: o.innerPeriodMs,
    outerPeriodMs: o.outerPeriodMs,
    initialKnobs(): Knobs {
      return {
        mpsSharePct: sharePct(o.initialSharePct, o.minSharePct),
        pacing: { mode: 'duty', duty: initialDuty, periodMs: o.dutyPeriodMs },
        trainingRunning: true,
      };
    },
    initialState(): GpucoloState {
      return {
        duty: initialDuty,
        rateTrackers: {},
        dutyAtRefRate: null,
        highSinceMs: null,
        lowSinceMs: null,
        lastMpsChangeMs: null,
        recent: [],
        ceilingPct: null,
        ceilingUntilMs: null,
      };
    },
    inner: (state, input) => gpucoloInner(o, state, input),
    outer: (state, input) => gpucoloOuter(o, state, input),
  };
}
