import { Type, type Static } from '@sinclair/typebox';
import { ID_PATTERN } from './subjects.ts';

/**
 * The workloads file of `gpucolo host --backend nvidia` (YAML or JSON): per GPU, the inference services and
 * training jobs to launch under the runner's MPS daemon, each with its command, and per service its SLO
 * and latency source, per job its pacing mode.
 */

const Id = Type.String({ pattern: ID_PATTERN.source, description: 'a subject token: 1-64 of A-Z a-z 0-9 _ -' });
const Command = Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'argv: the program and its arguments, run without a shell' });
const Env = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), { description: 'variables added to the environment' });
const IntervalMs = Type.Optional(Type.Number({ minimum: 50, description: 'scrape period, ms (default 1000)' }));
const Url = Type.String({ pattern: '^https?://', description: 'Prometheus metrics endpoint' });

/** What every launched workload may say about restarts and GPU memory. */
const ProcessOptions = {
  restart: Type.Optional(Type.Union([Type.Literal('on-failure'), Type.Literal('never')], {
    description: 'on-failure (default): relaunch after an exit with a non-zero code or a signal the runner did not send; never: leave it down',
  })),
  restartBackoffS: Type.Optional(Type.Number({ minimum: 0, maximum: 3600, description: 'seconds before the first relaunch (default 1), doubled for each failure in a row, at most 60 (or this first delay, if longer)' })),
  restartLimit: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, description: 'relaunches in a row before giving up (default 5); a run of 60 s or more starts the count again' })),
  memoryLimitMiB: Type.Optional(Type.Integer({ minimum: 1, description: 'GPU memory this MPS client may pin, MiB (CUDA_MPS_PINNED_DEVICE_MEM_LIMIT); default: no limit' })),
};

export const NvidiaLatencySource = Type.Union([
  Type.Object({ source: Type.Literal('stdout', { description: 'the service prints one JSON line per request or per window' }) }, { additionalProperties: false }),
  Type.Object({
    source: Type.Literal('triton'),
    url: Url,
    model: Type.String({ minLength: 1, description: 'the `model` label to follow' }),
    metric: Type.Optional(Type.Union([Type.Literal('summary'), Type.Literal('duration')], { description: 'summary: nv_inference_request_summary_us quantiles (default); duration: nv_inference_request_duration_us / nv_inference_request_success deltas' })),
    intervalMs: IntervalMs,
  }, { additionalProperties: false }),
  Type.Object({
    source: Type.Literal('vllm'),
    url: Url,
    model: Type.Optional(Type.String({ minLength: 1, description: 'the `model_name` label to follow (default: all)' })),
    intervalMs: IntervalMs,
  }, { additionalProperties: false }),
]);

export const NvidiaServiceSpec = Type.Object({
  id: Id,
  sloMs: Type.Number({ exclusiveMinimum: 0, description: 'latency SLO (p99 by default), ms' }),
  command: Type.Optional(Command),
  cwd: Type.Optional(Type.String()),
  env: Type.Optional(Env),
  latency: NvidiaLatencySource,
  stopGraceS: Type.Optional(Type.Number({ minimum: 0, description: 'seconds between SIGTERM and terminate_client on stop (default 10)' })),
  ...ProcessOptions,
}, { additionalProperties: false });

export const NvidiaTrainingSpec = Type.Object({
  id: Id,
  command: Command,
  cwd: Type.Optional(Type.String()),
  env: Type.Optional(Env),
  pacing: Type.Union([Type.Literal('cooperative'), Type.Literal('signal')], { description: 'cooperative: the training loop calls workloads/gpucolo_hook.py; signal: SIGSTOP/SIGCONT duty cycling' }),
  checkpointGraceS: Type.Optional(Type.Number({ minimum: 0, description: 'seconds to checkpoint and exit after SIGTERM before terminate_client (default 30)' })),
  checkpoint: Type.Optional(Type.Boolean({
    description: 'whether the job saves on SIGTERM and resumes when relaunched (default: true for cooperative, false for signal pacing); a job that cannot is never restarted to change its MPS share',
  })),
  mpsSharePct: Type.Optional(Type.Number({ minimum: 1, maximum: 100, description: 'the fixed MPS share of a job that cannot checkpoint (default: the policy\'s starting share)' })),
  ...ProcessOptions,
}, { additionalProperties: false });

export const NvidiaGpuWorkload = Type.Object({
  gpu: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1 })], { description: 'GPU index (as nvidia-smi numbers it) or UUID (GPU-...)' }),
  services: Type.Array(NvidiaServiceSpec, { minItems: 1 }),
  trainings: Type.Array(NvidiaTrainingSpec),
}, { additionalProperties: false });

export const NvidiaWorkloadsFile = Type.Object({
  backend: Type.Optional(Type.Literal('nvidia')),
  policy: Type.Optional(Type.String({ description: 'control policy name (see `gpucolo host --help`)' })),
  leaseTtlMs: Type.Optional(Type.Number({ minimum: 200, description: 'lifetime of a cooperative sleep lease, ms (default 2000)' })),
  gpus: Type.Array(NvidiaGpuWorkload, { minItems: 1 }),
}, { additionalProperties: false });

export type NvidiaWorkloadsFile = Static<typeof NvidiaWorkloadsFile>;
export type NvidiaGpuWorkload = Static<typeof NvidiaGpuWorkload>;
export type NvidiaServiceSpec = Static<typeof NvidiaServiceSpec>;
export type NvidiaTrainingSpec = Static<typeof NvidiaTrainingSpec>;
