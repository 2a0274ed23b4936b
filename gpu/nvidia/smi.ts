import { NvidiaToolError } from './errors.ts';
import { firstLine, runTool, type NvidiaBinaries } from './exec.ts';
import { numberCell, readCsvRows, textCell } from './csv.ts';

/** One physical GPU as nvidia-smi reports it; a value nvidia-smi cannot give is null. */
export interface NvidiaGpu {
  index: number;
  uuid: string;
  name: string;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  utilizationPct: number | null;
  /** `mig.mode.current`: true when MIG is enabled, false when disabled, null when not reported. */
  migEnabled: boolean | null;
  /** `compute_mode`: Default, Exclusive_Process, Prohibited; null when not reported. */
  computeMode: string | null;
}

/** One process with a compute context on a GPU (`--query-compute-apps`). */
export interface NvidiaComputeApp {
  gpuUuid: string;
  pid: number;
  processName: string | null;
  usedMemoryMiB: number | null;
}

/** The columns of the main GPU query, in the order we ask for them. */
export const GPU_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'memory.used', 'utilization.gpu'] as const;
/** Extra columns asked separately: an nvidia-smi that does not know them still gives the main list. */
export const GPU_MODE_FIELDS = ['uuid', 'mig.mode.current', 'compute_mode'] as const;
export const APP_FIELDS = ['gpu_uuid', 'pid', 'process_name', 'used_memory'] as const;

const NO_DEVICES = /no devices were found/i;
const NO_PROCESSES = /no running (compute )?processes found/i;

/** Parses `--query-gpu=index,uuid,name,memory.total,memory.used,utilization.gpu` output (any csv format). */
export function parseGpuQuery(text: string): { gpus: NvidiaGpu[]; warnings: string[] } {
  const warnings: string[] = [];
  if (NO_DEVICES.test(text)) return { gpus: [], warnings };
  const { rows, skipped } = readCsvRows(text, GPU_FIELDS, 'name');
  warnings.push(...skipped.map((s) => `nvidia-smi --query-gpu: ignored line ${s}`));
  const gpus: NvidiaGpu[] = [];
  for (const r of rows) {
    try {
      const index = numberCell(r[0]);
      const uuid = textCell(r[1]);
      if (index === null || !Number.isInteger(index) || index < 0) throw new Error(`index ${JSON.stringify(r[0])} is not a GPU index`);
      if (uuid === null) throw new Error('no UUID');
      gpus.push({
        index, uuid, name: textCell(r[2]) ?? `GPU ${index}`,
        memoryTotalMiB: numberCell(r[3], { toMiB: true }),
        memoryUsedMiB: numberCell(r[4], { toMiB: true }),
        utilizationPct: numberCell(r[5]),
        migEnabled: null, computeMode: null,
      });
    } catch (err) {
      warnings.push(`nvidia-smi --query-gpu: ignored row ${JSON.stringify(r.join(', '))}: ${(err as Error).message}`);
    }
  }
  return { gpus, warnings };
}

/** Parses `--query-gpu=uuid,mig.mode.current,compute_mode` output into a map by UUID. */
export function parseGpuModes(text: string): Map<string, { migEnabled: boolean | null; computeMode: string | null }> {
  const out = new Map<string, { migEnabled: boolean | null; computeMode: string | null }>();
  for (const r of readCsvRows(text, GPU_MODE_FIELDS).rows) {
    const uuid = textCell(r[0]);
    if (!uuid) continue;
    const mig = textCell(r[1])?.toLowerCase();
    out.set(uuid, { migEnabled: mig === 'enabled' ? true : mig === 'disabled' ? false : null, computeMode: textCell(r[2]) });
  }
  return out;
}

/** Parses `--query-compute-apps=gpu_uuid,pid,process_name,used_memory` output; "No running processes found" is an empty list. */
export function parseComputeApps(text: string): { apps: NvidiaComputeApp[]; warnings: string[] } {
  const warnings: string[] = [];
  if (NO_PROCESSES.test(text) && !/\d+\s*,/.test(text)) return { apps: [], warnings };
  const { rows, skipped } = readCsvRows(text.split('\n').filter((l) => !NO_PROCESSES.test(l)).join('\n'), APP_FIELDS, 'process_name');
  warnings.push(...skipped.map((s) => `nvidia-smi --query-compute-apps: ignored line ${s}`));
  const apps: NvidiaComputeApp[] = [];
  for (const r of rows) {
    try {
      const pid = numberCell(r[1]);
      const gpuUuid = textCell(r[0]);
      if (pid === null || !Number.isInteger(pid) || pid <= 0) throw new Error(`pid ${JSON.stringify(r[1])} is not a process id`);
      if (gpuUuid === null) throw new Error('no GPU UUID');
      apps.push({ gpuUuid, pid, processName: textCell(r[2]), usedMemoryMiB: numberCell(r[3], { toMiB: true }) });
    } catch (err) {
      warnings.push(`nvidia-smi --query-compute-apps: ignored row ${JSON.stringify(r.join(', '))}: ${(err as Error).message}`);
    }
  }
  return { apps, warnings };
}

export interface SmiOptions {
  binaries: NvidiaBinaries;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

async function smi(o: SmiOptions, args: string[]): Promise<string> {
  const res = await runTool(o.binaries.nvidiaSmi, { args, timeoutMs: o.timeoutMs ?? 15_000, overrideVar: 'GPUCOLO_NVIDIA_SMI', ...(o.env ? { env: o.env } : {}) });
  const text = `${res.stdout}\n${res.stderr}`;
  if (res.code === 0) return res.stdout;
  // nvidia-smi exits 6 with "No devices were found": a host with the driver and no GPU.
  if (NO_DEVICES.test(text)) return 'No devices were found';
  const why = firstLine(res.stdout) || firstLine(res.stderr) || (res.signal ? `killed by ${res.signal}` : 'no output');
  throw new NvidiaToolError(o.binaries.nvidiaSmi, 'failed', `${o.binaries.nvidiaSmi} ${args.join(' ')} failed (exit ${res.code ?? res.signal}): ${why}`);
}

export interface GpuDiscovery {
  gpus: NvidiaGpu[];
  warnings: string[];
}

/** Lists the GPUs through nvidia-smi: the main query must work; MIG and compute mode are added when nvidia-smi gives them. */
export async function queryGpus(o: SmiOptions): Promise<GpuDiscovery> {
  const main = parseGpuQuery(await smi(o, [`--query-gpu=${GPU_FIELDS.join(',')}`, '--format=csv,noheader,nounits']));
  const warnings = [...main.warnings];
  if (main.gpus.length === 0) return { gpus: [], warnings };
  try {
    const modes = parseGpuModes(await smi(o, [`--query-gpu=${GPU_MODE_FIELDS.join(',')}`, '--format=csv,noheader,nounits']));
    for (const g of main.gpus) {
      const m = modes.get(g.uuid);
      if (m) { g.migEnabled = m.migEnabled; g.computeMode = m.computeMode; }
    }
  } catch (err) {
    if ((err as NvidiaToolError).kind === 'missing') throw err;
    warnings.push(`MIG and compute mode unknown: ${(err as Error).message}`);
  }
  return { gpus: main.gpus, warnings };
}

/** Lists the processes with a compute context on any GPU. */
export async function queryComputeApps(o: SmiOptions): Promise<{ apps: NvidiaComputeApp[]; warnings: string[] }> {
  return parseComputeApps(await smi(o, [`--query-compute-apps=${APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits']));
}

/** Why a GPU cannot be managed, or null when it can. */
export function unmanageableReason(g: NvidiaGpu): string | null {
  if (g.migEnabled) return 'MIG is enabled: gpucolo shares whole GPUs through MPS and never changes GPU settings; use a GPU with MIG disabled';
  if (g.computeMode && /prohibited/i.test(g.computeMode)) return 'compute mode is Prohibited: no CUDA context can be created on it';
  return null;
}

/** Splits discovered GPUs into those a host runner would manage and those it skips, with why. */
export function manageableGpus(gpus: NvidiaGpu[]): { managed: NvidiaGpu[]; skipped: Array<{ gpu: NvidiaGpu; reason: string }> } {
  const managed: NvidiaGpu[] = [];
  const skipped: Array<{ gpu: NvidiaGpu; reason: string }> = [];
  for (const g of gpus) {
    const reason = unmanageableReason(g);
    if (reason) skipped.push({ gpu: g, reason });
    else managed.push(g);
  }
  return { managed, skipped };
}
