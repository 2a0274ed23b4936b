/**
 * The loads of the control matrix. Each is a function of the plant (open loads are sized against the
 * service's capacity on that plant) and of the seed (a bursty load's on/off times are drawn from it; every
 * policy of a cell sees the same ones).
 *
 *   paper-burst, rate-2x            two of the named scenarios (paper-burst is a closed-loop client: its
 *                                   arrivals depend on the policy, so policies do not see the same arrivals)
 *   diurnal-20min                   the diurnal scenario's curve (ServeGen m-large, 14 days, mean 100 req/s)
 *                                   compressed into 20 minutes instead of its hour
 *   <curve>                         every CSV in ../shared/data/loads (or a folder given), Poisson arrivals
 *                                   at rate-2x's service (batch 2, SLO 25 ms), mean 150 req/s; a curve
 *                                   longer than 20 minutes is compressed into 20 minutes, unless the matrix
 *                                   runs curves at full length (`--full-length`: as `--scenario rate-2x --load
 *                                   FILE` runs them, a day-long curve for a day)
 *   genai-qps-cycle                 data/fleet/genai-qps-cycle.csv (GenAI trace, 22 h daily cycle) in 20 minutes
 *   flat-30, flat-60, flat-85       Poisson at 30 / 60 / 85% of the service's capacity alone, 300 s
 *   mmpp-2x, mmpp-4x, mmpp-10x      on/off Markov-modulated Poisson at a mean of 20% of capacity: calm periods
 *                                   (mean 60 s) and bursts at 2 / 4 / 10x the calm rate (mean 10 / 5 / 3 s), 600 s
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng, deriveSeed, serviceMs, type GpuProfile } from '../../gpu/model/index.ts';
import { compress, readLoadCsv, rescale, scenario, SCENARIO_NAMES, SERVEGEN_RATE_FILE, type Scenario, type ScenarioName } from './scenarios.ts';

const here = dirname(fileURLToPath(import.meta.url));
/** The public load curves beside the project (shared/data/loads). */
export const SHARED_LOADS_DIR = join(here, '..', '..', '..', 'shared', 'data', 'loads');
export const GENAI_QPS_FILE = join(here, '..', '..', 'data', 'fleet', 'genai-qps-cycle.csv');

/** A matrix load: builds its scenario for a plant and a seed. */
export interface MatrixLoad {
  name: string;
  build(profileName: string, profile: GpuProfile, seed: number): Scenario;
}

/** A curve longer than this is compressed into it (20 min): the matrix must run in minutes. */
const CURVE_MAX_S = 1200;
const OPEN_BATCH = 2;
const OPEN_SLO_MS = 25;

/**
 * A load curve file as a matrix load (rate-2x's service, mean 150 req/s unless `meanRps`; longer than CURVE_MAX_S:
 * compressed into it, unless `fullLength`).
 */
export function curveLoad(file: string, o: { meanRps?: number; name?: string; fullLength?: boolean } = {}): MatrixLoad {
  const meanRps = o.meanRps ?? 150;
  const name = o.name ?? basename(file).replace(/\.csv$/i, '');
  const raw = readLoadCsv(file);
  const compressed = !o.fullLength && raw.endS > CURVE_MAX_S;
  const curve = rescale(compressed ? compress(raw, CURVE_MAX_S) : raw, meanRps);
  const squeezed = compressed ? `, ${(raw.endS / 3600).toFixed(1)} h compressed into ${CURVE_MAX_S / 60} min` : '';
  return {
    name,
    build: (profileName) => ({
      ...scenario('rate-2x'), name, profile: profileName, durationS: curve.endS, arrival: 'poisson',
      schedule: curve.points.map((p) => ({ tS: p.tS, rateRps: p.rateRps, batch: OPEN_BATCH })),
      loadMeanRps: meanRps,
      description: `ResNet-50 batch ${OPEN_BATCH}, Poisson following ${basename(file)}${squeezed}, mean ${meanRps} req/s; SLO ${OPEN_SLO_MS} ms`,
      source: file,
    }),
  };
}

/** Capacity of the open-load service alone on a plant, batches per second. */
export function capacityRps(profile: GpuProfile, batch = OPEN_BATCH): number {
  return 1000 / serviceMs(profile, batch);
}

function flatLoad(pct: number): MatrixLoad {
  const name = `flat-${pct}`;
  return {
    name,
    build: (profileName, profile) => {
      const rate = (capacityRps(profile) * pct) / 100;
      return {
        name, profile: profileName, sloMs: OPEN_SLO_MS, arrival: 'poisson', durationS: 300,
        schedule: [{ tS: 0, rateRps: rate, batch: OPEN_BATCH }], loadMeanRps: rate,
        description: `ResNet-50 batch ${OPEN_BATCH}, Poisson at ${pct}% of its capacity alone (${rate.toFixed(1)} req/s); SLO ${OPEN_SLO_MS} ms`,
        source: 'synthetic',
      };
    },
  };
}

function mmppLoad(burst: number, burstMeanS: number): MatrixLoad {
  const name = `mmpp-${burst}x`;
  const calmMeanS = 60;
  const durationS = 600;
  return {
    name,
    build: (profileName, profile, seed) => {
      const mean = 0.2 * capacityRps(profile);
      const burstFrac = burstMeanS / (burstMeanS + calmMeanS);
      const calm = mean / (1 - burstFrac + burstFrac * burst);
      const rng = new Rng(deriveSeed(seed, 1000 + burst));
      const schedule: Scenario['schedule'] = [];
      let t = 0;
      let on = false;
      while (t < durationS) {
        schedule.push({ tS: t, rateRps: on ? calm * burst : calm, batch: OPEN_BATCH });
        t += Math.max(1, Math.round(rng.exponential(on ? burstMeanS : calmMeanS)));
        on = !on;
      }
      return {
        name, profile: profileName, sloMs: OPEN_SLO_MS, arrival: 'poisson', durationS, schedule, loadMeanRps: mean,
        description: `ResNet-50 batch ${OPEN_BATCH}, on/off MMPP: calm ${calm.toFixed(1)} req/s (mean ${calmMeanS} s), bursts x${burst} (mean ${burstMeanS} s), mean ${mean.toFixed(1)} req/s = 20% of capacity; SLO ${OPEN_SLO_MS} ms`,
        source: 'synthetic (on/off times drawn from the seed)',
      };
    },
  };
}

function namedLoad(n: ScenarioName): MatrixLoad {
  return { name: n, build: (profileName) => ({ ...scenario(n), profile: profileName }) };
}

/** CSV load curves in a folder, sorted by name. */
export function curvesIn(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.csv')).sort().map((f) => join(dir, f));
}

/**
 * The default matrix's loads (curves from `loadsDir`, when it exists). `fullLength`: the curves from `loadsDir` at
 * their own length (the named loads keep theirs).
 */
export function defaultMatrixLoads(loadsDir = SHARED_LOADS_DIR, fullLength = false): MatrixLoad[] {
  // The diurnal scenario's curve (14 days) in 20 minutes like every long curve; its full hour is
  // `--scenario diurnal`.
  const loads: MatrixLoad[] = SCENARIO_NAMES.map((n) => (n === 'diurnal' ? curveLoad(SERVEGEN_RATE_FILE, { meanRps: 100, name: 'diurnal-20min' }) : namedLoad(n)));
  if (existsSync(loadsDir)) for (const f of curvesIn(loadsDir)) loads.push(curveLoad(f, { fullLength }));
  loads.push(curveLoad(GENAI_QPS_FILE, { name: 'genai-qps-cycle' }));
  loads.push(flatLoad(30), flatLoad(60), flatLoad(85));
  loads.push(mmppLoad(2, 10), mmppLoad(4, 5), mmppLoad(10, 3));
  return loads;
}

/**
 * Loads from a comma-separated list: names of the default loads, CSV files, or folders of CSV files; `fullLength`:
 * curve files at their own length. Throws with what is wrong.
 */
export function matrixLoads(spec: string | undefined, loadsDir = SHARED_LOADS_DIR, fullLength = false): MatrixLoad[] {
  const defaults = defaultMatrixLoads(loadsDir, fullLength);
  if (spec === undefined || spec === '' || spec === 'default') return defaults;
  const out: MatrixLoad[] = [];
  for (const item of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
    const named = defaults.find((l) => l.name === item);
    if (named) out.push(named);
    else if (existsSync(item) && statSync(item).isDirectory()) for (const f of curvesIn(item)) out.push(curveLoad(f, { fullLength }));
    else if (existsSync(item)) out.push(curveLoad(item, { fullLength }));
    else throw new Error(`matrix load "${item}" is neither a load name (${defaults.map((l) => l.name).join(', ')}) nor a CSV file or folder`);
  }
  if (out.length === 0) throw new Error('the matrix has no load');
  return out;
}

export { SCENARIO_NAMES };
