import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { POLICY_NAMES } from '../../control/index.ts';
import { isProfileFile, loadProfile } from '../../gpu/model/index.ts';
import { ID_PATTERN } from '../../schemas/index.ts';

/**
 * A workloads file that cannot be read or is not valid: the operator's input, so the CLI exits 2 with this
 * message (as for a bad flag). Defined here, not in cli/, which sits above the runners.
 */
export class WorkloadsFileError extends Error {
  override name = 'WorkloadsFileError';
  readonly exitCode = 2;
}

/** A workloads file's text (either backend's), or a WorkloadsFileError that says why it cannot be read. */
export function readWorkloadsText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new WorkloadsFileError(`cannot read workloads file ${file}: ${(err as Error).message}`);
  }
}

const Id = Type.String({ pattern: ID_PATTERN.source });

export const ServiceSpec = Type.Object({
  id: Id,
  sloMs: Type.Number({ exclusiveMinimum: 0 }),
  batch: Type.Integer({ minimum: 1 }),
  rateRps: Type.Number({ minimum: 0, description: 'requests (batches) per second' }),
}, { additionalProperties: false });

export const TrainingSpec = Type.Object({ id: Id }, { additionalProperties: false });

export const GpuWorkload = Type.Object({
  services: Type.Array(ServiceSpec, { minItems: 1 }),
  trainings: Type.Array(TrainingSpec),
}, { additionalProperties: false });

/** What a host runner runs on its simulated GPUs: one workload for every GPU, or one per GPU index. */
export const WorkloadsFile = Type.Object({
  profile: Type.Optional(Type.String({ description: 'simulated GPU profile: a built-in name, or a profile JSON file (relative to the workloads file)' })),
  policy: Type.Optional(Type.Union(POLICY_NAMES.map((n) => Type.Literal(n)))),
  mpsRestartMs: Type.Optional(Type.Number({ minimum: 0 })),
  /** Applied to every GPU (when `gpus` is absent, or for indices past its end). */
  perGpu: Type.Optional(GpuWorkload),
  gpus: Type.Optional(Type.Array(GpuWorkload)),
}, { additionalProperties: false });
export type WorkloadsFile = Static<typeof WorkloadsFile>;
export type GpuWorkload = Static<typeof GpuWorkload>;

/**
 * The default: per GPU one ResNet-50 service (batch 2 at 150 batches/s, p99 SLO 25 ms) next to one Wide ResNet-101 training job,
 * on the RTX 3090 profile.
 */
export const DEFAULT_WORKLOADS: WorkloadsFile = {
  profile: 'rtx3090-resnet50-wrn101',
  policy: 'gpucolo',
  perGpu: {
    services: [{ id: 'resnet50', sloMs: 25, batch: 2, rateRps: 150 }],
    trainings: [{ id: 'wrn101' }],
  },
};

const check = TypeCompiler.Compile(WorkloadsFile);

/** Parses and validates a workloads object; the error names the field to fix. */
export function parseWorkloads(value: unknown, source = 'workloads'): WorkloadsFile {
  if (!check.Check(value)) {
    const errs = [...check.Errors(value)].slice(0, 3).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new WorkloadsFileError(`${source} is invalid: ${errs.join('; ')}`);
  }
  if (!value.perGpu && !value.gpus?.length) throw new WorkloadsFileError(`${source} is invalid: give "perGpu" or a non-empty "gpus"`);
  for (const w of [value.perGpu, ...(value.gpus ?? [])]) {
    if (!w) continue;
    const ids = [...w.services.map((s) => s.id), ...w.trainings.map((t) => t.id)];
    if (new Set(ids).size !== ids.length) throw new WorkloadsFileError(`${source} is invalid: service and training ids on one GPU must be distinct (${ids.join(', ')})`);
  }
  return value;
}

/**
 * Reads a workloads JSON file. A `profile` that is a file path (see gpu/model's loadProfile) is resolved against
 * the workloads file's folder, as the nvidia backend resolves its commands, and checked now: a bad profile is a
 * usage error at start, not a failure when the first GPU is built.
 */
export function loadWorkloads(file: string): WorkloadsFile {
  const text = readWorkloadsText(file);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new WorkloadsFileError(`workloads file ${file} is not JSON: ${(err as Error).message}`);
  }
  const workloads = parseWorkloads(value, `workloads file ${file}`);
  if (workloads.profile !== undefined && isProfileFile(workloads.profile) && !isAbsolute(workloads.profile)) {
    workloads.profile = resolve(dirname(resolve(file)), workloads.profile);
  }
  if (workloads.profile !== undefined) {
    try {
      loadProfile(workloads.profile);
    } catch (err) {
      throw new WorkloadsFileError(`workloads file ${file}: profile: ${(err as Error).message}`);
    }
  }
  return workloads;
}

/** The workload of GPU `index`. */
export function workloadFor(w: WorkloadsFile, index: number): GpuWorkload {
  return w.gpus?.[index] ?? w.perGpu ?? w.gpus![index % w.gpus!.length]!;
}
