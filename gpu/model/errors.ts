/** Bad use of the simulated GPU: an unknown id or an out-of-range value. Retrying the same call cannot help. */
export class GpuModelError extends Error {
  override readonly name = 'GpuModelError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A model profile that is missing, unknown or invalid; `field` is the JSON path of the first bad field. */
export class ProfileError extends Error {
  override readonly name = 'ProfileError';
  readonly field: string | undefined;
  constructor(message: string, options?: { field?: string; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.field = options?.field;
  }
}
