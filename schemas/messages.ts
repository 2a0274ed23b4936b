import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { GPU_REF_PATTERN, ID_PATTERN } from './subjects.ts';

/** Wire schema version: every payload carries it as `v`. Bump on any incompatible change. */
export const SCHEMA_VERSION = 1 as const;

const Id = Type.String({ pattern: ID_PATTERN.source });
const Ms = (description: string) => Type.Number({ minimum: 0, description });
const Num = Type.Number();

function header<T extends string>(type: T) {
  return {
    v: Type.Literal(SCHEMA_VERSION, { description: 'schema version' }),
    type: Type.Literal(type),
  };
}

/**
 * The compatibility rule (schemas/README.md): what the runtime takes in (commands, telemetry, replies) is
 * closed, so an unknown field is refused at the edge before it can reach an actor; what it publishes for
 * other systems (events, `colo.v1.evt.>`) is open, so a field added within v1 never breaks a consumer that
 * validates v1. Anything else (a field removed, renamed, retyped or made required, a range narrowed, a
 * value added to a closed set) bumps SCHEMA_VERSION.
 */
const CLOSED = { additionalProperties: false } as const;
/** Published events: open to fields added within v1. */
const OPEN = {} as const;

const pacing = (extra: typeof CLOSED | typeof OPEN) => Type.Union([
  // Fine-grained duty cycle: every `periodMs`, training sleeps `duty * periodMs` (cooperative hook or SIGSTOP/SIGCONT).
  Type.Object({ mode: Type.Literal('duty'), duty: Type.Number({ minimum: 0, maximum: 1 }), periodMs: Type.Number({ exclusiveMinimum: 0, maximum: 60_000 }) }, extra),
  // The paper's knob: after each training iteration, sleep `sleepMs`. Bounded: a valid command can slow training,
  // never park it for hours.
  Type.Object({ mode: Type.Literal('per-iteration'), sleepMs: Type.Number({ minimum: 0, maximum: 60_000 }) }, extra),
]);
/** How a training job is paced between its iterations (control's `Pacing` is `Static<typeof PacingSchema>`). */
export const PacingSchema = pacing(CLOSED);
/** The pacing an event reports: the same fields, open to additions. */
const PacingInEvent = pacing(OPEN);

const CommandHeader = {
  id: Type.String({ minLength: 1, maxLength: 128, description: 'idempotency key: a repeated id gets the first reply again' }),
  deadlineUnixMs: Type.Number({ description: 'the receiver refuses the command after this time (Unix ms)' }),
};

/** Inference actor -> GPU actor, every inner period: the latency of requests that finished. */
export const InferenceWindow = Type.Object({
  ...header('inference.window'),
  host: Id, gpu: Id, serviceId: Id,
  seq: Type.Integer({ minimum: 0 }),
  tMs: Ms('device clock at the end of the window'),
  windowMs: Ms('window length'),
  sloMs: Type.Number({ exclusiveMinimum: 0 }),
  count: Type.Integer({ minimum: 0 }),
  meanMs: Num, p50Ms: Num, p95Ms: Num, p99Ms: Num, maxMs: Num,
  rateRps: Type.Number({ minimum: 0, description: 'arrivals per second in the window' }),
  sloWindows: Type.Integer({ minimum: 0, description: 'completed 1 s windows so far' }),
  sloWindowsMet: Type.Integer({ minimum: 0, description: 'of those, windows whose p99 was within the SLO' }),
  runP99Ms: Type.Number({ minimum: 0, description: 'p99 over every request since the service started' }),
}, CLOSED);

/** Training actor -> GPU actor, every inner period. */
export const TrainingProgress = Type.Object({
  ...header('training.progress'),
  host: Id, gpu: Id, jobId: Id,
  seq: Type.Integer({ minimum: 0 }),
  tMs: Ms('device clock'),
  windowMs: Ms('window length'),
  iterations: Type.Number({ minimum: 0, description: 'cumulative iterations' }),
  itersPerSec: Type.Number({ minimum: 0 }),
  state: Type.Union([Type.Literal('running'), Type.Literal('restarting'), Type.Literal('stopped')]),
  mpsSharePct: Type.Number({ minimum: 1, maximum: 100 }),
  pacing: PacingSchema,
}, CLOSED);

/** GPU actor -> training actor (request/reply). */
export const TrainingCommand = Type.Object({
  ...header('training.command'),
  ...CommandHeader,
  action: Type.Union([Type.Literal('set-pacing'), Type.Literal('set-mps-share'), Type.Literal('set-running')]),
  pacing: Type.Optional(PacingSchema),
  mpsSharePct: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
  running: Type.Optional(Type.Boolean()),
}, CLOSED);

/** Anyone -> inference actor (request/reply): change the offered load. */
export const InferenceCommand = Type.Object({
  ...header('inference.command'),
  ...CommandHeader,
  action: Type.Union([Type.Literal('set-rate'), Type.Literal('scale-rate'), Type.Literal('set-batch')]),
  /** Bounded so that a valid but absurd command cannot flood a simulated GPU. */
  rateRps: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6 })),
  scale: Type.Optional(Type.Number({ minimum: 0, maximum: 1000 })),
  batch: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
}, CLOSED);

/** Operator -> GPU actor (request/reply). */
export const GpuCommand = Type.Object({
  ...header('gpu.command'),
  ...CommandHeader,
  action: Type.Union([Type.Literal('get-state'), Type.Literal('set-slo'), Type.Literal('set-policy')]),
  serviceId: Type.Optional(Id),
  sloMs: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 600_000 })),
  policy: Type.Optional(Type.String({ maxLength: 64 })),
}, CLOSED);

/** The reply to every command. */
export const CommandReply = Type.Object({
  ...header('command.reply'),
  id: Type.String(),
  ok: Type.Boolean(),
  error: Type.Optional(Type.String()),
  duplicate: Type.Optional(Type.Boolean({ description: 'true when this id was seen before and this is the first reply again' })),
  state: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
}, CLOSED);

const ServiceStatus = Type.Object({
  serviceId: Id, sloMs: Num, p99Ms: Num, meanMs: Num, rateRps: Num, runP99Ms: Num,
  sloWindows: Type.Integer({ minimum: 0 }), sloWindowsMet: Type.Integer({ minimum: 0 }),
}, OPEN);
const TrainingStatus = Type.Object({
  jobId: Id, itersPerSec: Num, iterations: Num,
  state: Type.Union([Type.Literal('running'), Type.Literal('restarting'), Type.Literal('stopped')]),
}, OPEN);

/** Event, once a second per GPU: where its services and training stand. */
export const GpuStatusEvent = Type.Object({
  ...header('gpu.status'),
  host: Id, gpu: Id,
  tMs: Ms('device clock'),
  unixMs: Num,
  policy: Type.String(),
  state: Type.String({ description: 'GPU actor state: controlling, safe, stopped' }),
  services: Type.Array(ServiceStatus),
  trainings: Type.Array(TrainingStatus),
  mpsSharePct: Num,
  pacing: PacingInEvent,
  trainingRunning: Type.Boolean(),
  mpsChanges: Type.Integer({ minimum: 0 }),
  sleepChanges: Type.Integer({ minimum: 0 }),
}, OPEN);

/** Event per knob change: what moved, from what to what, and why. */
export const GpuDecisionEvent = Type.Object({
  ...header('gpu.decision'),
  host: Id, gpu: Id,
  tMs: Ms('device clock'),
  unixMs: Num,
  policy: Type.String(),
  tier: Type.Union([Type.Literal('inner'), Type.Literal('outer'), Type.Literal('safety')]),
  knob: Type.Union([Type.Literal('pacing'), Type.Literal('mpsSharePct'), Type.Literal('trainingRunning')]),
  oldValue: Num,
  newValue: Num,
  reason: Type.String(),
  terms: Type.Record(Type.String(), Num),
  drivingServiceId: Type.Optional(Id),
}, OPEN);

/** Event when the GPU actor falls back to its safe setting, or leaves it. */
export const GpuSafetyEvent = Type.Object({
  ...header('gpu.safety'),
  host: Id, gpu: Id,
  tMs: Ms('device clock'),
  unixMs: Num,
  /** device-fault / device-restored: the GPU's own machinery (its MPS daemon) failed or recovered. */
  condition: Type.Union([Type.Literal('telemetry-lost'), Type.Literal('telemetry-restored'), Type.Literal('shutdown'), Type.Literal('device-fault'), Type.Literal('device-restored')]),
  detail: Type.String(),
}, OPEN);

/** Error event: a message was dropped at the edge. */
export const BusRejectedEvent = Type.Object({
  ...header('bus.rejected'),
  host: Type.String(),
  unixMs: Num,
  subject: Type.String(),
  reason: Type.Union([Type.Literal('oversize'), Type.Literal('decode'), Type.Literal('schema'), Type.Literal('unknown-subject'), Type.Literal('version')]),
  detail: Type.String(),
  bytes: Type.Integer({ minimum: 0 }),
  rejectedTotal: Type.Integer({ minimum: 0 }),
}, OPEN);

/** Event when a host runner starts or stops. */
export const HostLifecycleEvent = Type.Object({
  ...header('host.lifecycle'),
  host: Id,
  unixMs: Num,
  state: Type.Union([Type.Literal('started'), Type.Literal('stopping'), Type.Literal('stopped')]),
  gpus: Type.Array(Id),
  backend: Type.String(),
  pid: Type.Integer(),
}, OPEN);

/** Fleet actor -> host runner (request/reply), per GPU: place, drain or checkpoint a workload there. */
export const PlacementCommand = Type.Object({
  ...header('placement.command'),
  ...CommandHeader,
  action: Type.Union([
    Type.Literal('describe'), Type.Literal('start-service'), Type.Literal('drain-service'),
    Type.Literal('start-training'), Type.Literal('checkpoint-training'),
  ]),
  serviceId: Type.Optional(Id),
  jobId: Type.Optional(Id),
  sloMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  batch: Type.Optional(Type.Integer({ minimum: 1 })),
  rateRps: Type.Optional(Type.Number({ minimum: 0 })),
  iterations: Type.Optional(Type.Number({ minimum: 0, description: 'start-training: resume from this checkpoint' })),
  planId: Type.Optional(Type.String({ maxLength: 64 })),
}, CLOSED);

const GpuRef = Type.String({ pattern: GPU_REF_PATTERN, description: 'host/gpu' });
const FleetMove = Type.Object({
  workload: Type.Union([Type.Literal('service'), Type.Literal('training')]),
  id: Id, from: GpuRef, to: GpuRef,
  reason: Type.Union([Type.Literal('relief'), Type.Literal('consolidate')]),
}, OPEN);

/** Event per fleet plan that moves something: what moves where, and the fleet before and after. */
export const FleetPlanEvent = Type.Object({
  ...header('fleet.plan'),
  fleetId: Id,
  planId: Type.String({ maxLength: 64 }),
  unixMs: Num,
  gpusTotal: Type.Integer({ minimum: 0 }),
  gpusInUseBefore: Type.Integer({ minimum: 0 }),
  gpusInUse: Type.Integer({ minimum: 0 }),
  gpusFreed: Type.Integer({ minimum: 0 }),
  moves: Type.Array(FleetMove, { maxItems: 1024 }),
  overloaded: Type.Array(GpuRef, { maxItems: 1024 }),
  unrelieved: Type.Array(GpuRef, { maxItems: 1024 }),
  planMs: Type.Number({ minimum: 0, description: 'time to compute the plan' }),
}, OPEN);

/** Event when a fleet plan's moves have emptied a GPU (freed) or put work on an empty one again (claimed). */
const GpuFleetChange = (type: 'gpu.freed' | 'gpu.claimed') => Type.Object({
  ...header(type),
  host: Id, gpu: Id,
  unixMs: Num,
  fleetId: Id,
  planId: Type.String({ maxLength: 64 }),
  gpusFreed: Type.Integer({ minimum: 0, description: 'GPUs free in the fleet after this change' }),
}, OPEN);
export const GpuFreedEvent = GpuFleetChange('gpu.freed');
export const GpuClaimedEvent = GpuFleetChange('gpu.claimed');

/** Event when a fleet process takes or gives up leadership (the KV lease). */
export const FleetLeaderEvent = Type.Object({
  ...header('fleet.leader'),
  fleetId: Id,
  unixMs: Num,
  state: Type.Union([Type.Literal('leading'), Type.Literal('standby'), Type.Literal('stopped')]),
  leaseRevision: Type.Integer({ minimum: 0 }),
}, OPEN);

export type InferenceWindow = Static<typeof InferenceWindow>;
export type TrainingProgress = Static<typeof TrainingProgress>;
export type TrainingCommand = Static<typeof TrainingCommand>;
export type InferenceCommand = Static<typeof InferenceCommand>;
export type GpuCommand = Static<typeof GpuCommand>;
export type CommandReply = Static<typeof CommandReply>;
export type GpuStatusEvent = Static<typeof GpuStatusEvent>;
export type GpuDecisionEvent = Static<typeof GpuDecisionEvent>;
export type GpuSafetyEvent = Static<typeof GpuSafetyEvent>;
export type BusRejectedEvent = Static<typeof BusRejectedEvent>;
export type HostLifecycleEvent = Static<typeof HostLifecycleEvent>;
export type PlacementCommand = Static<typeof PlacementCommand>;
export type FleetPlanEvent = Static<typeof FleetPlanEvent>;
export type GpuFreedEvent = Static<typeof GpuFreedEvent>;
export type GpuClaimedEvent = Static<typeof GpuClaimedEvent>;
export type FleetLeaderEvent = Static<typeof FleetLeaderEvent>;

/** Every message type by its `type` literal. */
export const MESSAGE_SCHEMAS = {
  'inference.window': InferenceWindow,
  'training.progress': TrainingProgress,
  'training.command': TrainingCommand,
  'inference.command': InferenceCommand,
  'gpu.command': GpuCommand,
  'command.reply': CommandReply,
  'gpu.status': GpuStatusEvent,
  'gpu.decision': GpuDecisionEvent,
  'gpu.safety': GpuSafetyEvent,
  'bus.rejected': BusRejectedEvent,
  'host.lifecycle': HostLifecycleEvent,
  'placement.command': PlacementCommand,
  'fleet.plan': FleetPlanEvent,
  'gpu.freed': GpuFreedEvent,
  'gpu.claimed': GpuClaimedEvent,
  'fleet.leader': FleetLeaderEvent,
} as const satisfies Record<string, TSchema>;
export type MessageType = keyof typeof MESSAGE_SCHEMAS;
export type MessageOf<T extends MessageType> = Static<(typeof MESSAGE_SCHEMAS)[T]>;
