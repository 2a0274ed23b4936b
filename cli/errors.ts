/** A usage error: bad flag or value. The CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses a number flag with bounds; the error says which flag and what to use. */
export function numberFlag(flag: string, raw: string, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
  const n = Number(raw);
  const kind = opts.integer ? 'an integer' : 'a number';
  if (raw.trim() === '' || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n))) {
    throw new UsageError(`${flag} must be ${kind}, got ${JSON.stringify(raw)}`);
  }
  if (opts.min !== undefined && n < opts.min) throw new UsageError(`${flag} must be >= ${opts.min}, got ${raw}`);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`${flag} must be <= ${opts.max}, got ${raw}`);
  return n;
}
