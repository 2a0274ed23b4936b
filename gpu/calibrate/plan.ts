import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';

/**
 * What `gpucolo calibrate` measures and for how long. Every duration is device time (ms): real time on a real
 * GPU, simulated time on the simulated one. The same plan runs on both backends.
 */
export const CalibrationPlanSchema = Type.Object({
  batches: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, description: 'inference alone: the batch sizes swept (service time against batch)' }),
  batch: Type.Integer({ minimum: 1, description: 'batch of the noise window and of the co-located grid' }),
  shares: Type.Array(Type.Number({ minimum: 1, maximum: 100 }), { minItems: 2, description: 'training MPS shares, % (one restart each, twice: next to inference and alone)' }),
  duties: Type.Array(Type.Number({ minimum: 0, maximum: 0.95 }), { minItems: 1, description: 'training sleep duties of the co-located grid (0 = no sleep, always measured)' }),
  dutyPeriodMs: Type.Number({ minimum: 10, description: 'period of the duty pacing' }),
  aloneWindowMs: Type.Number({ minimum: 1, description: 'inference alone, per batch size' }),
  noiseWindowMs: Type.Number({ minimum: 1, description: 'inference alone at `batch`: the latency noise' }),
  colocWindowMs: Type.Number({ minimum: 1, description: 'inference next to training, per share and duty' }),
  iterWindowMs: Type.Number({ minimum: 1, description: 'training alone, per share' }),
  settleMs: Type.Number({ minimum: 0, description: 'after every change, before measuring' }),
  pollMs: Type.Number({ minimum: 1, description: 'how often training progress is read' }),
  restartTimeoutMs: Type.Number({ minimum: 1, description: 'longest wait for a relaunched program (first iteration or first request)' }),
  budgetMs: Type.Number({ minimum: 1, description: 'device time cap: steps that would start past it are skipped (and listed)' }),
}, { additionalProperties: false });
export type CalibrationPlan = Static<typeof CalibrationPlanSchema>;

const S = 1000;

/**
 * The default plan: 6 batch sizes, 5 shares x 4 duties, 10 restarts. About 11 minutes of device time on a GPU whose
 * training restarts in 10 s (a restart and the relaunch of inference per batch size are waits the plan cannot
 * shorten); capped at 28 minutes.
 */
export const DEFAULT_PLAN: CalibrationPlan = {
  batches: [1, 2, 4, 8, 16, 32],
  batch: 8,
  shares: [100, 80, 60, 40, 20],
  duties: [0, 0.25, 0.5, 0.75],
  dutyPeriodMs: 1 * S,
  aloneWindowMs: 5 * S,
  noiseWindowMs: 30 * S,
  colocWindowMs: 12 * S,
  iterWindowMs: 20 * S,
  settleMs: 3 * S,
  pollMs: 50,
  restartTimeoutMs: 120 * S,
  budgetMs: 28 * 60 * S,
};

/** `--quick`: 3 batch sizes, 3 shares x 2 duties, 6 restarts; about 3.7 minutes with 10 s restarts; no step starts past 4.2 (a step is under 40 s with 15 s restarts, so the whole stays under 5). */
export const QUICK_PLAN: CalibrationPlan = {
  ...DEFAULT_PLAN,
  batches: [1, 8, 32],
  shares: [100, 50, 25],
  duties: [0, 0.5],
  aloneWindowMs: 4 * S,
  noiseWindowMs: 10 * S,
  colocWindowMs: 8 * S,
  iterWindowMs: 8 * S,
  settleMs: 2 * S,
  restartTimeoutMs: 60 * S,
  budgetMs: 4.2 * 60 * S,
};

const check = TypeCompiler.Compile(CalibrationPlanSchema);

/** A plan from a base and overrides (a --plan file's JSON); the error names the field to fix. */
export function makePlan(base: CalibrationPlan, overrides: unknown, source = 'plan'): CalibrationPlan {
  if (overrides === undefined) return { ...base };
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) throw new PlanError(`${source} must be a JSON object of plan fields`);
  const plan = { ...base, ...(overrides as object) };
  if (!check.Check(plan)) {
    const errs = [...check.Errors(plan)].slice(0, 3).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new PlanError(`${source} is invalid: ${errs.join('; ')}`);
  }
  if (!plan.duties.includes(0)) throw new PlanError(`${source} is invalid: /duties must include 0 (the interference fit uses the points without sleep)`);
  if (new Set(plan.shares).size !== plan.shares.length) throw new PlanError(`${source} is invalid: /shares must be distinct`);
  return plan;
}

/**
 * Device time the plan takes, ms, for a training restart of `restartMs` and a relaunch of inference of
 * `relaunchMs` (0 on the simulated GPU, where the batch changes in place). Excludes iterations slower than the
 * windows (a window is extended until three iterations are seen).
 */
export function estimatePlanMs(p: CalibrationPlan, restartMs: number, relaunchMs: number): number {
  const sweep = p.batches.length * (relaunchMs + p.settleMs + p.aloneWindowMs) + relaunchMs + p.settleMs + p.noiseWindowMs;
  const coloc = p.shares.length * (restartMs + p.settleMs + p.colocWindowMs + (p.duties.length - 1) * (p.settleMs + p.colocWindowMs));
  const alone = p.settleMs + p.shares.length * (restartMs + p.settleMs + p.iterWindowMs);
  return sweep + coloc + alone;
}

export class PlanError extends Error {
  override name = 'PlanError';
}
