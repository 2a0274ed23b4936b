/**
 * `gpucolo`: our policy. Inner tier = training sleep duty from an online-identified model of the tail
 * (gpucolo-inner.ts, gpucolo-model.ts), outer tier = training MPS share, moved when the model's expected
 * training gain pays for the restart (gpucolo-outer.ts). Options: gpucolo-options.ts.
 */
import { gpucoloInner } from './gpucolo-inner.ts';
import { resolveGpucoloOptions, type GpucoloOptions, type GpucoloState } from './gpucolo-options.ts';
import { gpucoloOuter } from './gpucolo-outer.ts';
import { sharePct } from './common.ts';
import type { Knobs, Policy } from './types.ts';

export { GPUCOLO_DEFAULTS, resolveGpucoloOptions, type GpucoloOptions, type GpucoloState } from './gpucolo-options.ts';

/** Build the gpucolo policy; every period, target and budget is an option (defaults in GPUCOLO_DEFAULTS). */
export function createGpucolo(options: Partial<GpucoloOptions> = {}): Policy<GpucoloState> & { readonly options: GpucoloOptions } {
  const o = resolveGpucoloOptions(options);
  return {
    name: 'gpucolo',
    options: o,
    innerPeriodMs: o.innerPeriodMs,
    outerPeriodMs: o.outerPeriodMs,
    initialKnobs(): Knobs {
      // The first inner period takes the duty to the cap until inference alone has been read (gpucolo-inner.ts).
      return {
        mpsSharePct: sharePct(o.initialSharePct, o.minSharePct),
        pacing: { mode: 'duty', duty: o.initialDuty, periodMs: o.dutyPeriodMs },
        trainingRunning: true,
      };
    },
    initialState(): GpucoloState {
      return {
        duty: o.initialDuty,
        recent: [],
        recentDuty: [],
        recentActive: false,
        steps: 0,
        activeSinceMs: null,
        rateTrackers: {},
        models: {},
        shares: [],
        dutyAvg: o.initialDuty,
        awakeSum: 0,
        awakeN: 0,
        startMs: null,
        restartTimesMs: [],
        restarts: 0,
        lastMpsChangeMs: null,
        restartSinceMs: null,
        restartMs: null,
        alertUntilMs: null,
        saturatedMs: null,
      };
    },
    inner: (state, input) => gpucoloInner(o, state, input),
    outer: (state, input) => gpucoloOuter(o, state, input),
  };
}
