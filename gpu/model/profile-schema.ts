import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ProfileError } from './errors.ts';

const Note = Type.Optional(Type.String({ description: 'free text: where a number comes from' }));
const NonNegative = (description: string) => Type.Number({ minimum: 0, description });
const Positive = (description: string) => Type.Number({ exclusiveMinimum: 0, description });

/**
 * A simulated GPU's parameters. "Interference" I is dimensionless: while a training job is awake, an
 * inference batch progresses at speed 1 / (1 + sum of I over awake jobs).
 */
export const GpuProfileSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    source: Type.String({ minLength: 1, description: 'where the numbers come from' }),
    gpu: Type.Object(
      { name: Type.String({ minLength: 1 }), memoryMiB: Positive('device memory'), note: Note },
      { additionalProperties: false },
    ),
    inference: Type.Object(
      {
        model: Type.String({ minLength: 1 }),
        fixedMs: NonNegative('per-batch time independent of batch size, alone on the GPU'),
        perItemMs: NonNegative('extra time per item in the batch, alone on the GPU'),
        jitterSigma: Type.Number({ minimum: 0, maximum: 1, description: 'lognormal sigma of per-batch time' }),
        note: Note,
      },
      { additionalProperties: false },
    ),
    interference: Type.Object(
      {
        mpsAt100Pct: NonNegative('I of a training job awake under MPS with a 100% thread share'),
        mpsShareExponent: Positive('I(share) = mpsAt100Pct * (share / 100) ^ exponent'),
        timeSlicing: NonNegative('I of an awake training job without MPS (time-slicing)'),
        note: Note,
      },
      { additionalProperties: false },
    ),
    training: Type.Object(
      {
        model: Type.String({ minLength: 1 }),
        iterAloneMs: Positive('one iteration alone on the whole GPU'),
        shareExponent: NonNegative('MPS: speed(share) = (share / 100) ^ exponent of alone speed'),
        slowdownWhileInferring: NonNegative('MPS: iteration time x (1 + this) while an inference batch runs'),
        timeSlicingSpeed: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'no MPS: fraction of alone speed while an inference batch runs' }),
        note: Note,
      },
      { additionalProperties: false },
    ),
    mpsRestartMs: NonNegative('an MPS share change restarts the training process for this long'),
    sleepChangeMs: NonNegative('a sleep (pacing) change takes effect after this long'),
    experiments: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Object(
          {
            inferenceBatch: Type.Optional(Positive('batch size of the experiment')),
            inferenceBatchMin: Type.Optional(Positive('smallest batch size of the experiment')),
            inferenceBatchMax: Type.Optional(Positive('largest batch size of the experiment')),
            arrival: Type.Optional(Type.Union([Type.Literal('poisson'), Type.Literal('uniform'), Type.Literal('closed')])),
            rateRps: Type.Optional(NonNegative('offered batches per second (closed loop: the cap)')),
            sloMs: Type.Optional(Positive('latency SLO of the experiment')),
            note: Note,
          },
          { additionalProperties: false },
        ),
        { description: 'the measurements the profile was fitted to, documented as plain data' },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Parameters of a simulated GPU (see GpuProfileSchema for each field's meaning). */
export type GpuProfile = Static<typeof GpuProfileSchema>;

/** Validate plain JSON as a GpuProfile; throws ProfileError naming the first bad field. */
export function parseProfile(json: unknown, origin = 'profile'): GpuProfile {
  if (Value.Check(GpuProfileSchema, json)) return json;
  const errors = [...Value.Errors(GpuProfileSchema, json)].slice(0, 5);
  const first = errors[0];
  const field = first?.path || '/';
  const detail = errors.map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
  throw new ProfileError(`${origin}: invalid field ${field} (${detail})`, { field });
}
