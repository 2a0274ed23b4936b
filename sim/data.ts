/**
 * Loaders for the fleet simulation's inputs: the compact files data/derive-fleet.ts derives from the real
 * traces (see data/README.md). Each loader checks its header and every row, and a bad or missing file
 * raises FleetDataError naming the file and what is wrong.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The vendored copy: data/fleet/ beside the repository's sim/. */
export const DEFAULT_FLEET_DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'data', 'fleet');

export class FleetDataError extends Error {
  override name = 'FleetDataError';
}

export const FLEET_DATA_FILES = {
  gpuTypes: 'pai-v2020-gpu-types.csv',
  podShapes: 'openb-pod-shapes.csv',
  dlrm: 'dlrm-gpu-instances.csv',
  genaiCycle: 'genai-qps-cycle.csv',
  inferenceDuty: 'genai-inference-gpu-duty.csv',
  servegenClients: 'servegen-m-large-clients.csv',
} as const;

export interface GpuTypeCount { type: string; machines: number; gpus: number }
export interface PodShape { qos: string; numGpu: number; gpuMilli: number; durationS: number }
/** One GPU inference instance of the DLRM trace; NaN = before the trace began / after it ended. */
export interface DlrmInstance { app: number; gpus: number; creationS: number; deletionS: number }
export interface InferenceDuty { meanPct: number; p95Pct: number }

export interface FleetData {
  dir: string;
  gpuTypes: GpuTypeCount[];
  podShapes: PodShape[];
  dlrm: DlrmInstance[];
  /** GenAI generative QPS per 10-minute bin (relative values; the shape is what counts). */
  genaiCycle: { tS: number; qps: number }[];
  inferenceDuty: InferenceDuty[];
  /** ServeGen clients: window starts (s) and each client's rate relative to its own mean. */
  servegen: { tS: Float64Array; clients: Float32Array[]; names: string[] };
}

function table(dir: string, file: string, header: string[]): string[][] {
  const path = join(dir, file);
  if (!existsSync(path)) throw new FleetDataError(`${path}: missing; --data must name a folder holding ${Object.values(FLEET_DATA_FILES).join(', ')} (made by data/derive-fleet.ts)`);
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const head = lines[0]?.split(',') ?? [];
  if (header.some((h, i) => head[i] !== h)) {
    throw new FleetDataError(`${path}: header must start with ${header.join(',')}, got ${JSON.stringify(lines[0] ?? '')}`);
  }
  if (lines.length < 2) throw new FleetDataError(`${path}: no rows`);
  return lines.slice(1).map((l) => l.split(','));
}

function num(path: string, row: number, col: string, raw: string | undefined, opts: { empty?: boolean; min?: number } = {}): number {
  if ((raw === undefined || raw === '') && opts.empty) return NaN;
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || (opts.min !== undefined && n < opts.min)) {
    throw new FleetDataError(`${path}: row ${row + 2}, column ${col}: expected a number${opts.min !== undefined ? ` >= ${opts.min}` : ''}, got ${JSON.stringify(raw ?? '')}`);
  }
  return n;
}

/** Reads every input of the fleet simulation from `dir` (default: the vendored data/fleet/). */
export function loadFleetData(dir: string = DEFAULT_FLEET_DATA_DIR): FleetData {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new FleetDataError(`${dir}: not a folder; --data must name a folder holding ${Object.values(FLEET_DATA_FILES).join(', ')} (made by data/derive-fleet.ts)`);
  }
  const F = FLEET_DATA_FILES;
  const p = (f: string) => join(dir, f);
  const gpuTypes = table(dir, F.gpuTypes, ['gpu_type', 'machines', 'gpus']).map((r, i) => ({
    type: r[0]!, machines: num(p(F.gpuTypes), i, 'machines', r[1], { min: 0 }), gpus: num(p(F.gpuTypes), i, 'gpus', r[2], { min: 1 }),
  }));
  const podShapes = table(dir, F.podShapes, ['qos', 'num_gpu', 'gpu_milli', 'duration_s']).map((r, i) => ({
    qos: r[0]!, numGpu: num(p(F.podShapes), i, 'num_gpu', r[1], { min: 1 }),
    gpuMilli: num(p(F.podShapes), i, 'gpu_milli', r[2], { min: 0 }), durationS: num(p(F.podShapes), i, 'duration_s', r[3], { min: 0 }),
  }));
  const dlrm = table(dir, F.dlrm, ['app', 'gpus', 'creation_s', 'deletion_s']).map((r, i) => ({
    app: num(p(F.dlrm), i, 'app', r[0], { min: 0 }), gpus: num(p(F.dlrm), i, 'gpus', r[1], { min: 1 }),
    creationS: num(p(F.dlrm), i, 'creation_s', r[2], { empty: true, min: 0 }), deletionS: num(p(F.dlrm), i, 'deletion_s', r[3], { empty: true, min: 0 }),
  }));
  const genaiCycle = table(dir, F.genaiCycle, ['t_s', 'qps']).map((r, i) => ({
    tS: num(p(F.genaiCycle), i, 't_s', r[0], { min: 0 }), qps: num(p(F.genaiCycle), i, 'qps', r[1], { min: 0 }),
  }));
  const inferenceDuty = table(dir, F.inferenceDuty, ['pod', 'samples', 'mean_pct', 'p95_pct']).map((r, i) => ({
    meanPct: num(p(F.inferenceDuty), i, 'mean_pct', r[2], { min: 0 }), p95Pct: num(p(F.inferenceDuty), i, 'p95_pct', r[3], { min: 0 }),
  }));
  const sgPath = p(F.servegenClients);
  if (!existsSync(sgPath)) throw new FleetDataError(`${sgPath}: missing (made by data/derive-fleet.ts)`);
  const sgLines = readFileSync(sgPath, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const names = (sgLines[0] ?? '').split(',');
  if (names[0] !== 't_s' || names.length < 2) throw new FleetDataError(`${sgPath}: header must be t_s followed by one column per client`);
  const rows = sgLines.slice(1);
  if (rows.length < 2) throw new FleetDataError(`${sgPath}: no rows`);
  const tS = new Float64Array(rows.length);
  const clients = names.slice(1).map(() => new Float32Array(rows.length));
  rows.forEach((l, i) => {
    const f = l.split(',');
    if (f.length !== names.length) throw new FleetDataError(`${sgPath}: row ${i + 2} has ${f.length} columns, header has ${names.length}`);
    tS[i] = num(sgPath, i, 't_s', f[0], { min: 0 });
    for (let c = 1; c < f.length; c++) clients[c - 1]![i] = num(sgPath, i, names[c]!, f[c], { min: 0 });
  });
  return { dir, gpuTypes, podShapes, dlrm, genaiCycle, inferenceDuty, servegen: { tS, clients, names: names.slice(1) } };
}
