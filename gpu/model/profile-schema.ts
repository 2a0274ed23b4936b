import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ProfileError } from './errors.ts';

const Note = Type.Optional(Type.String({ description: 'free text: where a number comes from' }));
const NonNegative = (description: string) => Type.Number({ minimum: 0, description });
const Positive = (description: string) => Type.Number({ exclusiveMinimum: 0, description });
const Provenance = (description: string) =>
  Type.Optional(Type.Record(Type.String({ pattern: '^(/[A-Za-z0-9_]+)+$' }), Type.String({ minLength: 1 }), { description }));

/**
 * A simulated GPU's parameters. "Interference" I is dimensionless: while a training job is awake, an
 * inference batch progresses at speed S / (1 + sum of I over awake jobs), S = 1 unless inference itself runs
 * under an MPS cap (inference.mpsShareExponent); a tail batch (interference.tailProb) sees tailFactor x I.
 * Every field added after the first calibrated profile is optional, with a default that changes nothing.
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
        mpsShareExponent: Type.Optional(Positive(
          'inference under its own MPS cap: speed alone = (share / 100) ^ exponent of full speed. Default 0.85 (iGniter, ' +
          'V100, ResNet-50 at batch 64: 0.8-0.9; at batch 1 about 0.3: small batches barely notice a cap). Only matters ' +
          'when a policy caps inference (GSLICE).',
        )),
        note: Note,
      },
      { additionalProperties: false },
    ),
    interference: Type.Object(
      {
        mpsAt100Pct: NonNegative('I of a training job awake under MPS with a 100% thread share'),
        mpsShareExponent: Positive('I(share) = mpsAt100Pct * (share / 100) ^ exponent'),
        timeSlicing: NonNegative('I of an awake training job without MPS (time-slicing)'),
        tailProb: Type.Optional(Type.Number({
          minimum: 0, maximum: 1,
          description: 'heavy co-located tails: the probability that a batch is a tail batch. Default 0 (no tail batches, no extra random draws)',
        })),
        tailFactor: Type.Optional(Type.Number({
          minimum: 1,
          description: 'a tail batch sees tailFactor x the interference of the awake training jobs (speed 1 / (1 + tailFactor * I)); alone it runs as any other batch. Default 1',
        })),
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
    inferenceRestartMs: Type.Optional(NonNegative(
      'a change of inference\'s own MPS share restarts the inference process for this long: no batch is served meanwhile ' +
      '(requests queue; the batch in service starts again). Default: mpsRestartMs',
    )),
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
    provenance: Type.Optional(Type.Object(
      { measured: Provenance('measured, or fitted to measurements'), derived: Provenance('calculated from other numbers (specifications, another profile)'), assumed: Provenance('assumed: pinned by nothing measured') },
      { additionalProperties: false, description: 'where each number comes from: JSON pointers (e.g. /interference/mpsAt100Pct) to the source or reason' },
    )),
  },
  { additionalProperties: false },
);

/** Parameters of a simulated GPU (see GpuProfileSchema for each field's meaning). */
export type GpuProfile = Static<typeof GpuProfileSchema>;

/**
 * Values of the optional fields when a profile leaves them out: each reproduces the model as it was before the
 * field existed (inference uncapped, no tail batches), so an older profile gives identical results.
 */
export const PROFILE_DEFAULTS = Object.freeze({
  inferenceMpsShareExponent: 0.85,
  tailProb: 0,
  tailFactor: 1,
});

/** Validate plain JSON as a GpuProfile; throws ProfileError naming the first bad field. */
export function parseProfile(json: unknown, origin = 'profile'): GpuProfile {
  if (!Value.Check(GpuProfileSchema, json)) {
    const errors = [...Value.Errors(GpuProfileSchema, json)].slice(0, 5);
    const first = errors[0];
    const field = first?.path || '/';
    const detail = errors.map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
    throw new ProfileError(`${origin}: invalid field ${field} (${detail})`, { field });
  }
  checkProvenance(json, origin);
  return json;
}

/** Every provenance pointer names a number the profile sets, and no number is claimed twice. */
function checkProvenance(profile: GpuProfile, origin: string): void {
  const seen = new Map<string, string>();
  for (const [kind, entries] of Object.entries(profile.provenance ?? {})) {
    for (const pointer of Object.keys(entries ?? {})) {
      const field = `/provenance/${kind}${pointer}`;
      if (typeof valueAt(profile, pointer) !== 'number') {
        throw new ProfileError(`${origin}: invalid field ${field} (${pointer} is not a number this profile sets)`, { field });
      }
      const other = seen.get(pointer);
      if (other) throw new ProfileError(`${origin}: invalid field ${field} (${pointer} is already listed as ${other})`, { field });
      seen.set(pointer, kind);
    }
  }
}

/** The value at a JSON pointer of plain JSON (no escapes: profile keys are plain words). */
function valueAt(json: unknown, pointer: string): unknown {
  let at: unknown = json;
  for (const key of pointer.split('/').slice(1)) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}
