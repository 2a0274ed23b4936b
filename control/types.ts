import type { Static } from '@sinclair/typebox';
import type { PacingSchema } from '../schemas/index.ts';

/**
 * The largest fraction of time any pacing path pauses training: the signal pacer (gpu/nvidia/pacer.ts), the
 * cooperative hook (workloads/gpucolo_hook.py, MAX_DUTY) and the simulated GPU (gpu/model) all cap a duty here,
 * so every paused process still makes progress and no controller can command a pause that hardware would refuse.
 */
export const MAX_DUTY = 0.95;

/**
 * How a training job is paced between its iterations, as on the wire (schemas' PacingSchema):
 * `{ mode: 'duty', duty, periodMs }`, a fine-grained duty cycle (every `periodMs`, training sleeps `duty * periodMs`,
 * by the cooperative hook or SIGSTOP/SIGCONT), or `{ mode: 'per-iteration', sleepMs }`, the paper's knob (after
 * each training iteration, sleep `sleepMs`). A type-only import: control/ loads nothing of schemas/ at run time.
 */
export type Pacing = Static<typeof PacingSchema>;

/** The two knobs of a co-located GPU, applied to every training job on it. */
export interface Knobs {
  /** Training process MPS active-thread percentage, 1..100 (outer tier; changing it restarts training). */
  mpsSharePct: number;
  /** Training sleep (inner tier). */
  pacing: Pacing;
  /** False when the policy keeps training off this GPU entirely (no-colocation). */
  trainingRunning: boolean;
  /**
   * Inference process MPS active-thread percentage, 1..100; absent = 100 (inference uncapped, the paper's setting).
   * Only GSLICE moves it; changing it restarts the inference process.
   */
  inferenceSharePct?: number;
}

/** Latency summary of one inference service over one inner period. */
export interface LatencyWindow {
  serviceId: string;
  sloMs: number;
  /** Requests (batches) that finished in the window. */
  count: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Arrival rate in the window, requests per second. */
  rateRps: number;
  windowMs: number;
}

/** Progress of one training job over one inner period. */
export interface TrainingObservation {
  jobId: string;
  itersPerSec: number;
  /** False while the job restarts (MPS change) or is stopped. */
  running: boolean;
}

/** Everything a policy sees at a decision. */
export interface ControlInput {
  nowMs: number;
  services: LatencyWindow[];
  trainings: TrainingObservation[];
  knobs: Knobs;
}

/** One knob movement and why: the unit of tracing and explanation. */
export interface Decision {
  tier: 'inner' | 'outer';
  knob: 'pacing' | 'mpsSharePct' | 'trainingRunning';
  oldValue: number;
  newValue: number;
  /** One short human-readable rule name, e.g. "p99 above target", "saturated at max duty". */
  reason: string;
  /** The controller's terms: measurement, target, error, gain, feedforward, ... (all numbers). */
  terms: Record<string, number>;
  /** The service whose SLO drove the decision (the tightest). */
  drivingServiceId?: string;
}

export interface StepResult<S> {
  state: S;
  knobs: Knobs;
  decisions: Decision[];
}

/** A control policy: pure, deterministic, no clock, no I/O. */
export interface Policy<S = unknown> {
  readonly name: PolicyName;
  /** Inner decision period (ms). */
  readonly innerPeriodMs: number;
  /** Outer decision period (ms); Infinity when the policy has no outer tier. */
  readonly outerPeriodMs: number;
  /** Knob values at start. */
  initialKnobs(): Knobs;
  initialState(): S;
  /** Called every innerPeriodMs with the last window. */
  inner(state: S, input: ControlInput): StepResult<S>;
  /** Called every outerPeriodMs with a window aggregated over the outer period. */
  outer(state: S, input: ControlInput): StepResult<S>;
}

export const POLICY_NAMES = [
  'gpucolo',
  'gpucolo-paper',
  'gpucolo-paper-p99',
  'gslice',
  'simple',
  'conservative',
  'no-colocation',
] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
