/** The waits every test shares: a pause, and polling until something holds or a deadline passes. */

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What a wait is for, in the error it throws on timeout (a function: worked out only then, e.g. a process's stderr). */
export type Why = string | (() => string);

/**
 * Calls `probe` every `everyMs` until it returns a value (undefined, null or false: not yet), and returns that value;
 * throws `timed out after MS ms waiting for WHAT` once `ms` have passed. An error `probe` throws ends the wait.
 */
export async function waitFor<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms: number, what: Why, everyMs = 20): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/** Polls `cond` every `everyMs` until it is true; throws once `ms` have passed. */
export async function until(cond: () => boolean, ms: number, what: Why, everyMs = 20): Promise<void> {
  await waitFor(() => cond(), ms, what, everyMs);
}
