/**
 * The subject tree, defined once. Every subject is versioned and host-scoped so NATS permissions can
 * fence a host (`colo.v1.<host>.>`); events for other systems live under `colo.v1.evt.>`.
 */
export const SUBJECT_ROOT = 'colo.v1';
/** The host token reserved for the event tree. */
export const EVENT_TOKEN = 'evt';
/** The token under the event tree where the fleet actor's own events live (so no host may use it). */
export const FLEET_TOKEN = 'fleet';

/** One id as regex text, unanchored: 1-64 letters, digits, `_` or `-`. */
const ID_TOKEN = '[A-Za-z0-9_-]{1,64}';
/** Host, GPU, service and job ids become subject tokens: letters, digits, `_` and `-` only. Schemas use `ID_PATTERN.source`. */
export const ID_PATTERN = new RegExp(`^${ID_TOKEN}$`);
/** A GPU named as `host/gpu`, as pattern text (JSON Schema `pattern`; `new RegExp` it to test). */
export const GPU_REF_PATTERN = `^${ID_TOKEN}/${ID_TOKEN}$`;

/** Throws a clear error when an id cannot be a subject token. */
export function assertId(kind: string, id: string): string {
  if (!ID_PATTERN.test(id)) {
    throw new Error(`invalid ${kind} id ${JSON.stringify(id)}: use 1-64 letters, digits, '_' or '-'`);
  }
  if (kind === 'host' && (id === EVENT_TOKEN || id === FLEET_TOKEN)) throw new Error(`host id "${id}" is reserved`);
  return id;
}

export const subjects = {
  inferenceWindow: (host: string, gpu: string, svc: string) => `${SUBJECT_ROOT}.${host}.${gpu}.inf.${svc}.window`,
  inferenceCommand: (host: string, gpu: string, svc: string) => `${SUBJECT_ROOT}.${host}.${gpu}.inf.${svc}.cmd`,
  trainingProgress: (host: string, gpu: string, job: string) => `${SUBJECT_ROOT}.${host}.${gpu}.train.${job}.progress`,
  trainingCommand: (host: string, gpu: string, job: string) => `${SUBJECT_ROOT}.${host}.${gpu}.train.${job}.cmd`,
  gpuCommand: (host: string, gpu: string) => `${SUBJECT_ROOT}.${host}.${gpu}.cmd`,
  gpuStatus: (host: string, gpu: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.${gpu}.status`,
  gpuDecision: (host: string, gpu: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.${gpu}.decision`,
  gpuSafety: (host: string, gpu: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.${gpu}.safety`,
  busRejected: (host: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.rejected`,
  hostLifecycle: (host: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.lifecycle`,
  /** Fleet actor -> host runner: place, drain or checkpoint a workload on one GPU. */
  placementCommand: (host: string, gpu: string) => `${SUBJECT_ROOT}.${host}.${gpu}.placement`,
  fleetPlan: () => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${FLEET_TOKEN}.plan`,
  fleetLeader: () => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${FLEET_TOKEN}.leader`,
  gpuFreed: (host: string, gpu: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.${gpu}.freed`,
  gpuClaimed: (host: string, gpu: string) => `${SUBJECT_ROOT}.${EVENT_TOKEN}.${host}.${gpu}.claimed`,
  /** Everything a host listens to or publishes on its own tree. */
  hostTree: (host: string) => `${SUBJECT_ROOT}.${host}.>`,
  /** Every event of every host. */
  allEvents: () => `${SUBJECT_ROOT}.${EVENT_TOKEN}.>`,
} as const;
