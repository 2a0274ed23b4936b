/** What went wrong with an NVIDIA tool, so a caller (and a user) can tell a missing tool from a broken one. */
export const NvidiaFailure = {
  /** The binary is not on PATH (or the override names no executable). */
  Missing: 'missing',
  /** The tool did not answer within its deadline. */
  Hung: 'hung',
  /** The tool ran and reported a failure (non-zero exit, an error text). */
  Failed: 'failed',
  /** The tool answered something we cannot read. */
  Unparsable: 'unparsable',
  /** The MPS daemon is not running on the pipe directory we use. */
  NoDaemon: 'no-daemon',
  /** An MPS server reports a fault. */
  Fault: 'fault',
} as const;
export type NvidiaFailure = (typeof NvidiaFailure)[keyof typeof NvidiaFailure];

/** A failure of nvidia-smi or nvidia-cuda-mps-control; `kind` says which, the message what to do. */
export class NvidiaToolError extends Error {
  override name = 'NvidiaToolError';
  constructor(
    readonly tool: string,
    readonly kind: NvidiaFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A workload process could not be started, stopped or read. */
export class WorkloadError extends Error {
  override name = 'WorkloadError';
}

/** The state directory is in use by another live runner, or unusable. */
export class StateDirError extends Error {
  override name = 'StateDirError';
}
