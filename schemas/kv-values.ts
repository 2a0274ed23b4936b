/** Values stored in JetStream KV (not messages on a subject): versioned like every wire payload. */
import { Type, type Static } from '@sinclair/typebox';
import { PacingSchema, SCHEMA_VERSION } from './messages.ts';
import { ID_PATTERN } from './subjects.ts';

/** What a host runner needs to resume a GPU where its previous incarnation left it (bucket colo_state, key `<host>.<gpu>`). */
export const GpuStateRecord = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  host: Type.String({ pattern: ID_PATTERN.source }),
  gpu: Type.String({ pattern: ID_PATTERN.source }),
  policy: Type.String({ maxLength: 64 }),
  /** The controller's knobs (never the safe setting's: that one is re-derived from telemetry). */
  knobs: Type.Object({
    mpsSharePct: Type.Number({ minimum: 1, maximum: 100 }),
    pacing: PacingSchema,
    trainingRunning: Type.Boolean(),
    /** Inference's own MPS share (GSLICE); absent = 100. */
    inferenceSharePct: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
  }, { additionalProperties: false }),
  /** SLO in force per service (set by commands; they outlive the runner). */
  sloMs: Type.Record(Type.String({ pattern: ID_PATTERN.source }), Type.Number({ exclusiveMinimum: 0 })),
  savedUnixMs: Type.Number({ minimum: 0 }),
}, { additionalProperties: false });
export type GpuStateRecord = Static<typeof GpuStateRecord>;

/** The fleet leader's lease (bucket COLO_FLEET, key `leader`): who holds it and when it was last renewed. */
export const FleetLeaseValue = Type.Object({
  v: Type.Literal(SCHEMA_VERSION),
  fleetId: Type.String({ pattern: ID_PATTERN.source }),
  renewedUnixMs: Type.Number(),
});
export type FleetLeaseValue = Static<typeof FleetLeaseValue>;
