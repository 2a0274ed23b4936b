/** Device time that runs `speed` times faster than wall time, from a start instant. */
export interface ScaledClock {
  speed: number;
  /** Device ms since start. */
  now(): number;
  /** An xstate clock: delays are device ms, so timers fire after delay/speed wall ms. */
  xstate: { setTimeout: (fn: (...args: unknown[]) => void, ms: number) => unknown; clearTimeout: (id: unknown) => void };
}

/** A clock whose device time starts at 0 now and runs `speed` times faster than the wall. */
export function scaledClock(speed: number, startWallMs = performance.now()): ScaledClock {
  if (!(speed > 0) || !Number.isFinite(speed)) throw new Error(`speed must be a positive number, got ${speed}`);
  return {
    speed,
    now: () => (performance.now() - startWallMs) * speed,
    xstate: {
      setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms / speed)),
      clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
    },
  };
}
