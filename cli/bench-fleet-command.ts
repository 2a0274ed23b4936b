import { fleetBenchTable, runFleetBench, type FleetBenchResult } from '../bench/index.ts';
import { numberFlag } from './errors.ts';

export interface BenchFleetFlags {
  gpus: string;
  seconds: string;
  roundTrips: string;
  json?: boolean;
}

const r4 = (x: number | null) => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(4)));

/**
 * Which code was timed: 'build' (dist/) or 'source' (the TypeScript through tsx, which bin/gpucolo.mjs runs when
 * dist/ is missing or older than the sources); the round trip and its floor read differently on each.
 */
export function runtime(): 'build' | 'source' {
  return process.env.GPUCOLO_RUNTIME === 'build' ? 'build' : 'source';
}

/** The JSON line: every number to 4 decimals (none is compared finer than that). */
export function benchFleetJson(b: FleetBenchResult): Record<string, unknown> {
  const round = (o: object) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' ? r4(v) : v]));
  return { scale: round(b.scale), roundTrip: round(b.roundTrip), natsFloor: round(b.natsFloor), p99OverFloor: r4(b.p99OverFloor), gc: round(b.gc), runtime: runtime() };
}

/** `gpucolo bench fleet`. */
export async function benchFleetCommand(f: BenchFleetFlags): Promise<void> {
  const gpus = numberFlag('--gpus', f.gpus, { integer: true, min: 1, max: 100_000 });
  const seconds = numberFlag('--seconds', f.seconds, { min: 1, max: 3600 });
  const roundTrips = numberFlag('--round-trips', f.roundTrips, { integer: true, min: 10, max: 100_000 });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const b = await runFleetBench({ gpus, seconds, roundTrips, log });
  const table = `${fleetBenchTable(b)}\nruntime: ${runtime()} (build: dist/; source: the TypeScript through tsx)`;
  if (f.json) {
    log(table);
    process.stdout.write(`${JSON.stringify(benchFleetJson(b))}\n`);
  } else {
    process.stdout.write(`${table}\n`);
  }
}
