/**
 * The control-quality scenarios: one inference service and one training job on one simulated GPU, with
 * the load changing over time. A scenario is a piecewise-constant schedule of (rate, batch) plus the
 * service's SLO, batch and arrival process. `--load FILE` replaces the schedule by a CSV rate curve.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ArrivalProcess } from '../../gpu/model/index.ts';

/** From tS on (until the next point), requests arrive at rateRps with this batch size. */
export interface LoadPoint {
  tS: number;
  rateRps: number;
  batch: number;
}

export interface Scenario {
  name: string;
  description: string;
  profile: string;
  sloMs: number;
  arrival: ArrivalProcess;
  durationS: number;
  schedule: LoadPoint[];
  /** Mean request rate a `--load` curve is rescaled to when `--mean-rps` is not given. */
  loadMeanRps: number;
  /** Where the schedule came from (printed with the results). */
  source: string;
}

export const SCENARIO_NAMES = ['paper-burst', 'rate-2x', 'diurnal'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

const here = dirname(fileURLToPath(import.meta.url));
/** The ServeGen m-large aggregate rate, derived by data/derive.ts (see data/README.md). */
export const SERVEGEN_RATE_FILE = join(here, '..', '..', 'data', 'servegen-m-large-rate.csv');

/**
 * A load change at a schedule point is a "step" when the rate moves by at least RATE_STEP or the batch by
 * at least BATCH_STEP (relative): settling time is measured after each step.
 */
export const RATE_STEP = 0.2;
export const BATCH_STEP = 0.05;

/** Builds a named scenario. */
export function scenario(name: ScenarioName): Scenario {
  switch (name) {
    case 'paper-burst':
      // PAPER.md's testbed: ResNet-50 batch 105 -> 115 at 90 s, back at 290 s, SLO 90 ms, 400 s; the
      // paper's client sends the next batch when the previous returns (closed loop).
      return {
        name, profile: 'rtx3090-resnet50-wrn101', sloMs: 90, arrival: 'closed', durationS: 400,
        description: 'paper testbed: ResNet-50 batch 105 -> 115 at 90 s, back at 290 s; SLO 90 ms; closed-loop client',
        schedule: [{ tS: 0, rateRps: 1000, batch: 105 }, { tS: 90, rateRps: 1000, batch: 115 }, { tS: 290, rateRps: 1000, batch: 105 }],
        loadMeanRps: 6,
        source: 'PAPER.md (Chen et al., ICDCS 2024, testbed experiment)',
      };
    case 'rate-2x':
      return {
        name, profile: 'rtx3090-resnet50-wrn101', sloMs: 25, arrival: 'poisson', durationS: 360,
        description: 'ResNet-50 batch 2, Poisson 150 req/s, doubled to 300 req/s for 60 s twice (60-120 s, 240-300 s); SLO 25 ms',
        schedule: [
          { tS: 0, rateRps: 150, batch: 2 }, { tS: 60, rateRps: 300, batch: 2 }, { tS: 120, rateRps: 150, batch: 2 },
          { tS: 240, rateRps: 300, batch: 2 }, { tS: 300, rateRps: 150, batch: 2 },
        ],
        loadMeanRps: 150,
        source: 'synthetic steps',
      };
    case 'diurnal': {
      const curve = readLoadCsv(SERVEGEN_RATE_FILE);
      const load = rescale(compress(curve, 3600), 100);
      return {
        name, profile: 'rtx3090-resnet50-wrn101', sloMs: 25, arrival: 'poisson', durationS: 3600,
        description: 'ResNet-50 batch 2, Poisson; the ServeGen m-large aggregate rate (14 days) compressed into one hour, mean 100 req/s; SLO 25 ms',
        schedule: load.points.map((p) => ({ tS: p.tS, rateRps: p.rateRps, batch: 2 })),
        loadMeanRps: 100,
        source: 'data/servegen-m-large-rate.csv (alibaba/ServeGen language/m-large, all 162 clients summed; see data/README.md)',
      };
    }
  }
}

/** A rate curve: piecewise constant from each tS to the next, the last held for `endS - tS`. */
export interface RateCurve {
  points: { tS: number; rateRps: number }[];
  endS: number;
}

/**
 * Reads a CSV with header `t_s,rate_rps` (or `t_s,qps`; extra columns ignored; rows sorted by time; blank lines and
 * lines starting with # skipped). The last rate is held for the median row spacing (60 s for one row).
 * Throws with the file, line and what is wrong on anything else.
 */
export function readLoadCsv(file: string): RateCurve {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read load file ${file}: ${(err as Error).message}`);
  }
  const lines = text.split(/\r?\n/);
  let header: string[] | undefined;
  const points: { tS: number; rateRps: number }[] = [];
  let ti = -1;
  let ri = -1;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const cells = line.split(',').map((c) => c.trim());
    if (!header) {
      header = cells.map((c) => c.toLowerCase().replace(/^"|"$/g, ''));
      ti = header.indexOf('t_s');
      ri = header.indexOf('rate_rps');
      if (ri < 0) ri = header.indexOf('qps'); // the GenAI trace's name for the same thing
      if (ti < 0 || ri < 0) throw new Error(`${file}:${i + 1}: the header must name columns t_s and rate_rps, got "${line}"`);
      return;
    }
    const tS = Number(cells[ti]);
    const rateRps = Number(cells[ri]);
    if (cells[ti] === undefined || cells[ti] === '' || !Number.isFinite(tS)) throw new Error(`${file}:${i + 1}: t_s is not a number: "${line}"`);
    if (cells[ri] === undefined || cells[ri] === '' || !Number.isFinite(rateRps) || rateRps < 0) {
      throw new Error(`${file}:${i + 1}: rate_rps must be a number >= 0: "${line}"`);
    }
    const prev = points[points.length - 1];
    if (prev && tS <= prev.tS) throw new Error(`${file}:${i + 1}: t_s must increase (${tS} after ${prev.tS})`);
    points.push({ tS, rateRps });
  });
  if (!header) throw new Error(`${file}: empty; expected a header t_s,rate_rps and at least one row`);
  if (points.length === 0) throw new Error(`${file}: no rows after the header`);
  const gaps = points.slice(1).map((p, i) => p.tS - points[i]!.tS).sort((a, b) => a - b);
  const last = gaps.length > 0 ? gaps[Math.floor(gaps.length / 2)]! : 60;
  const t0 = points[0]!.tS;
  const shifted = points.map((p) => ({ tS: p.tS - t0, rateRps: p.rateRps }));
  const curve = { points: shifted, endS: shifted[shifted.length - 1]!.tS + last };
  if (meanRate(curve) <= 0) throw new Error(`${file}: every rate is 0; nothing to serve`);
  return curve;
}

/** Time-weighted mean rate of a curve. */
export function meanRate(c: RateCurve): number {
  let area = 0;
  c.points.forEach((p, i) => {
    const end = c.points[i + 1]?.tS ?? c.endS;
    area += p.rateRps * (end - p.tS);
  });
  return c.endS > 0 ? area / c.endS : 0;
}

/** The curve with every rate scaled so the time-weighted mean is `meanRps`. */
export function rescale(c: RateCurve, meanRps: number): RateCurve {
  const k = meanRps / meanRate(c);
  return { points: c.points.map((p) => ({ tS: p.tS, rateRps: p.rateRps * k })), endS: c.endS };
}

/** The curve squeezed (or stretched) in time to last `durationS`. */
export function compress(c: RateCurve, durationS: number): RateCurve {
  const k = durationS / c.endS;
  return { points: c.points.map((p) => ({ tS: p.tS * k, rateRps: p.rateRps })), endS: durationS };
}

/**
 * The scenario with its schedule replaced by a `--load` curve: open Poisson arrivals at the scenario's
 * base batch and SLO, rescaled to `meanRps` (default: the scenario's loadMeanRps).
 */
export function withLoad(s: Scenario, file: string, meanRps?: number): Scenario {
  const curve = rescale(readLoadCsv(file), meanRps ?? s.loadMeanRps);
  const batch = s.schedule[0]!.batch;
  return {
    ...s,
    arrival: 'poisson',
    durationS: curve.endS,
    schedule: curve.points.map((p) => ({ tS: p.tS, rateRps: p.rateRps, batch })),
    description: `${s.name} service (batch ${batch}, SLO ${s.sloMs} ms), Poisson arrivals following ${file}, mean ${(meanRps ?? s.loadMeanRps).toFixed(1)} req/s, ${curve.endS.toFixed(0)} s`,
    source: file,
  };
}

/** The scenario's own curve rescaled to `meanRps` (for `--mean-rps` without `--load`). */
export function withMeanRps(s: Scenario, meanRps: number): Scenario {
  if (s.arrival === 'closed') throw new Error(`--mean-rps applies to open loads; ${s.name} is a closed-loop client (use it with --load)`);
  const curve = rescale({ points: s.schedule.map((p) => ({ tS: p.tS, rateRps: p.rateRps })), endS: s.durationS }, meanRps);
  return { ...s, schedule: s.schedule.map((p, i) => ({ ...p, rateRps: curve.points[i]!.rateRps })), description: `${s.description}; rescaled to mean ${meanRps} req/s` };
}

/**
 * Times (s) at which the load steps: the rate moves by at least RATE_STEP of the run's mean rate (so the
 * small relative swings of a quiet hour are not steps), or the batch by at least BATCH_STEP of itself.
 */
export function loadSteps(s: Scenario): number[] {
  const mean = meanRate({ points: s.schedule.map((p) => ({ tS: p.tS, rateRps: p.rateRps })), endS: s.durationS });
  const steps: number[] = [];
  for (let i = 1; i < s.schedule.length; i++) {
    const a = s.schedule[i - 1]!;
    const b = s.schedule[i]!;
    const rateStep = s.arrival !== 'closed' && Math.abs(b.rateRps - a.rateRps) >= RATE_STEP * mean;
    const batchStep = Math.abs(b.batch - a.batch) >= BATCH_STEP * a.batch;
    if (rateStep || batchStep) steps.push(b.tS);
  }
  return steps;
}
