import { Type, type Static, type TSchema } from '@sinclair/typebox';

/** Wire schema version: every payload carries it as `v`. Bump on any incompatible change. */
export const SCHEMA_VERSION = 1 as const;

const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
const Ms = (description: string) => Type.Number({ minimum: 0, description });
const Num = Type.Number();

function header<T extends string>(type: T) {
  return {
    v: Type.Literal(SCHEMA_VERSION, { description: 'schema version' }),
    type: Type.Literal(type),
  };
}

export const PacingSchema = Type.Union([
  Type.Object({ mode: Type.Literal('duty'), duty: Type.Number({ minimum: 0, maximum: 1 }), periodMs: Type.Number({ exclusiveMinimum: 0 }) }, { additionalProperties: false }),
  Type.Object({ mode: Type.Literal('per-iteration'), sleepMs: Type.Number({ minimum: 0 }) }, { additionalProperties: false }),
]);

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
}, { additionalProperties: false });

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
}, { additionalProperties: false });

/** GPU actor -> training actor (request/reply). */
export const TrainingCommand = Type.Object({
  ...header('training.command'),
  ...CommandHeader,
  action: Type.Union([Type.Literal('set-pacing'), Type.Literal('set-mps-share'), Type.Literal('set-running')]),
  pacing: Type.Optional(PacingSchema),
  mpsSharePct: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
  running: Type.Optional(Type.Boolean()),
}, { additionalProperties: false });

/** Anyone -> inference actor (request/reply): change the offered load. */
export const InferenceCommand = Type.Object({
  ...header('inference.command'),
  ...CommandHeader,
  action: Type.Union([Type.Literal('set-rate'), Type.Literal('scale-rate'), Type.Literal('set-batch')]),
  rateRps: Type.Optional(Type.Number({ minimum: 0 })),
  scale: Type.Optional(Type.Number({ minimum: 0 })),
  batch: Type.Optional(Type.Integer({ minimum: 1 })),
}, { additionalProperties: false });

/** Operator -> GPU actor (request/reply). */
export const GpuCommand = Type.Object({
  ...header('gpu.command'),
  ...CommandHeader,
  action: Type.Union([Type.Literal('get-state'), Type.Literal('set-slo'), Type.Literal('set-policy')]),
  serviceId: Type.Optional(Id),
  sloMs: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  policy: Type.Optional(Type.String({ maxLength: 64 })),
}, { additionalProperties: false });

/** The reply to every command. */
export const CommandReply = Type.Object({
  ...header('command.reply'),
  id: Type.String(),
  ok: Type.Boolean(),
  error: Type.Optional(Type.String()),
  duplicate: Type.Optional(Type.Boolean({ description: 'true when this id was seen before and this is the first reply again' })),
  state: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
}, { additionalProperties: false });

const ServiceStatus = Type.Object({
  serviceId: Id, sloMs: Num, p99Ms: Num, meanMs: Num, rateRps: Num, runP99Ms: Num,
  sloWindows: Type.Integer({ minimum: 0 }), sloWindowsMet: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });
const TrainingStatus = Type.Object({
  jobId: Id, itersPerSec: Num, iterations: Num,
  state: Type.Union([Type.Literal('running'), Type.Literal('restarting'), Type.Literal('stopped')]),
}, { additionalProperties: false });

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
  pacing: PacingSchema,
  trainingRunning: Type.Boolean(),
  mpsChanges: Type.Integer({ minimum: 0 }),
  sleepChanges: Type.Integer({ minimum: 0 }),
}, { additionalProperties: false });

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
}, { additionalProperties: false });

/** Event when the GPU actor falls back to its safe setting, or leaves it. */
export const GpuSafetyEvent = Type.Object({
  ...header('gpu.safety'),
  host: Id, gpu: Id,
  tMs: Ms('device clock'),
  unixMs: Num,
  condition: Type.Union([Type.Literal('telemetry-lost'), Type.Literal('telemetry-restored'), Type.Literal('shutdown')]),
  detail: Type.String(),
}, { additionalProperties: false });

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
}, { additionalProperties: false });

/** Event when a host runner starts or stops. */
export const HostLifecycleEvent = Type.Object({
  ...header('host.lifecycle'),
  host: Id,
  unixMs: Num,
  state: Type.Union([Type.Literal('started'), Type.Literal('stopping'), Type.Literal('stopped')]),
  gpus: Type.Array(Id),
  backend: Type.String(),
  pid: Type.Integer(),
}, { additionalProperties: false });

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
} as const satisfies Record<string, TSchema>;
export type MessageType = keyof typeof MESSAGE_SCHEMAS;
export type MessageOf<T extends MessageType> = Static<(typeof MESSAGE_SCHEMAS)[T]>;
