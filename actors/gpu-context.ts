// The GPU actor's types: its input, context (the snapshot a restarted runner restores), events and actuations.
import type { Decision, Knobs, LatencyWindow, PolicyName } from '../control/index.ts';
import type { InferenceReport } from './inference.ts';
import type { TrainingReport } from './training.ts';

export interface GpuActorInput {
  host: string;
  gpu: string;
  policy: PolicyName;
  /** Options handed to the policy factory (periods, margins, ...). */
  policyOptions?: Record<string, unknown>;
  /** Device ms with no latency window before the actor falls back to its safe setting (default 2000). */
  staleAfterMs?: number;
  /** Training sleep duty held while telemetry is lost: high (inference first) but never a full pause. */
  safeDuty?: number;
  statusPeriodMs?: number;
  /** Knobs to start from instead of the policy's initial ones (a restarted runner's stored state). */
  knobs?: Knobs;
  /**
   * The MPS share is fixed (a training job that cannot checkpoint): no tier moves it, and the outer tier,
   * whose knob it is, does not run; the inner tier paces training as ever.
   */
  mpsShareFixed?: boolean;
}

export interface ServiceView {
  sloMs: number;
  /** Windows received since the last inner decision. */
  innerWindows: LatencyWindow[];
  /** Windows received since the last outer decision. */
  outerWindows: LatencyWindow[];
  last?: InferenceReport;
  /**
   * Device time of the newest window with a finished request. A service that has served and then
   * finishes nothing for staleAfterMs (its workload died or hung, or its latency source went quiet)
   * counts as lost telemetry, even though its (empty) windows keep coming.
   */
  lastServedTMs?: number;
}

/**
 * A latency window (WINDOW, actors/gpu.ts) and the decision it completes write their fields into this object in
 * place (its services' window buffers, tMs, lastWindowTMs, stallMs, lastInnerTMs, policyState, knobs and the
 * counters): an xstate assign would copy the whole context and clone the snapshot for every window. A snapshot is
 * therefore the actor's current state, not a frozen copy; knobs and services are still new objects whenever they
 * change, so comparing them by reference tells a change (runners/host keepStateSaved does).
 */
export interface GpuContext {
  host: string;
  gpu: string;
  policyName: PolicyName;
  policyOptions: Record<string, unknown>;
  policyState: unknown;
  knobs: Knobs;
  services: Record<string, ServiceView>;
  trainings: Record<string, TrainingReport>;
  /** Telemetry is lost once no latency window has arrived for this long (device ms). */
  staleAfterMs: number;
  /** Device time of the newest latency window received. */
  lastWindowTMs: number;
  /** Device time of the last watchdog reading. */
  lastClockTMs?: number;
  /**
   * How long this process itself stalled (watchdog readings late by more than a period) since the last
   * window: time in which the runner could not receive telemetry is not the telemetry's silence.
   */
  stallMs?: number;
  /** True while the safe setting is in force. */
  safe: boolean;
  /** Services whose workload is down (its process died, not yet back), with why: each keeps the safe setting. */
  downServices: Record<string, string>;
  mpsShareFixed: boolean;
  /** The controller's knobs when the safe setting took over: restored when telemetry returns. */
  preSafeKnobs?: Knobs;
  /** Device time of the last inner decision (ms). */
  lastInnerTMs: number;
  safeDuty: number;
  statusPeriodMs: number;
  /** Latest device time seen in telemetry (ms). */
  tMs: number;
  mpsChanges: number;
  sleepChanges: number;
  decisions: number;
}

export type GpuEvent =
  | { type: 'WINDOW'; serviceId: string; report: InferenceReport }
  | { type: 'PROGRESS'; jobId: string; report: TrainingReport }
  | { type: 'SET_SLO'; serviceId?: string; sloMs: number }
  | { type: 'SET_POLICY'; policy: PolicyName }
  | { type: 'CLOCK'; tMs: number }
  /** `silent`: the services that finished nothing for too long (empty: no window came at all). */
  | { type: 'TELEMETRY_LOST'; silent: string[]; detail?: string }
  /** A service's workload died (its process exited), or came back. */
  | { type: 'WORKLOAD_DOWN'; serviceId: string; detail: string }
  | { type: 'WORKLOAD_UP'; serviceId: string }
  | { type: 'TELEMETRY_RESTORED' }
  /** The fleet moved a service or a training job off this GPU: forget it. */
  | { type: 'SERVICE_REMOVED'; serviceId: string }
  | { type: 'TRAINING_REMOVED'; jobId: string }
  | { type: 'STOP' };

/** One control step's outcome: the knobs before and after, and the decisions (events, spans) behind it. */
export interface Actuation {
  tier: Decision['tier'] | 'safety' | 'start';
  old: Knobs;
  knobs: Knobs;
  decisions: Decision[];
}
