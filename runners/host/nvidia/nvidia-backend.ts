import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse as parseYaml } from 'yaml';
import { readWorkloadsText, WorkloadsFileError } from '../index.ts';
import { isPolicyName, POLICY_NAMES, type Knobs, type PolicyName } from '../../../control/index.ts';
import {
  binariesFromEnv, DEFAULT_RESTART, manageableGpus, MpsControl, NvidiaGpuDevice, PauseGuard, queryGpus,
  type LatencySource, type NvidiaBinaries, type NvidiaGpu, type RestartPolicy,
} from '../../../gpu/nvidia/index.ts';
import type { GpuDevice } from '../../../gpu/index.ts';
import { NvidiaWorkloadsFile, type NvidiaGpuWorkload } from '../../../schemas/index.ts';
import type { WorkloadsFile } from '../index.ts';

const check = TypeCompiler.Compile(NvidiaWorkloadsFile);

/** Validates an nvidia workloads object; the error names the field to fix. */
export function parseNvidiaWorkloads(value: unknown, source = 'workloads'): NvidiaWorkloadsFile {
  if (!check.Check(value)) {
    const errs = [...check.Errors(value)].slice(0, 3).map((e) => `${e.path || '/'}: ${e.message}`);
    throw new WorkloadsFileError(`${source} is invalid for --backend nvidia: ${errs.join('; ')}`);
  }
  if (value.policy !== undefined && !isPolicyName(value.policy)) {
    throw new WorkloadsFileError(`${source} is invalid: /policy must be one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(value.policy)}`);
  }
  value.gpus.forEach((g, i) => {
    const ids = [...g.services.map((s) => s.id), ...g.trainings.map((t) => t.id)];
    if (new Set(ids).size !== ids.length) throw new WorkloadsFileError(`${source} is invalid: /gpus/${i}: service and training ids on one GPU must be distinct (${ids.join(', ')})`);
    g.services.forEach((s, k) => {
      if (s.latency.source === 'stdout' && !s.command) throw new WorkloadsFileError(`${source} is invalid: /gpus/${i}/services/${k}: latency source stdout needs a command to launch`);
      const launchOnly = (['restart', 'restartBackoffS', 'restartLimit', 'memoryLimitMiB'] as const).find((f) => s[f] !== undefined);
      if (!s.command && launchOnly) throw new WorkloadsFileError(`${source} is invalid: /gpus/${i}/services/${k}/${launchOnly}: only for a service the runner launches (give it a command)`);
    });
    [...g.services.map((s, k) => ({ w: s, at: `services/${k}` })), ...g.trainings.map((t, k) => ({ w: t, at: `trainings/${k}` }))].forEach(({ w, at }) => {
      if (w.memoryLimitMiB !== undefined && w.env?.CUDA_MPS_PINNED_DEVICE_MEM_LIMIT !== undefined) {
        throw new WorkloadsFileError(`${source} is invalid: /gpus/${i}/${at}: give the GPU memory limit once, as memoryLimitMiB or as env CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`);
      }
    });
    g.trainings.forEach((t, k) => {
      const checkpoints = t.checkpoint ?? t.pacing === 'cooperative';
      if (t.mpsSharePct !== undefined && checkpoints) {
        throw new WorkloadsFileError(`${source} is invalid: /gpus/${i}/trainings/${k}/mpsSharePct: a fixed share is for a job that cannot checkpoint (checkpoint: false); the controller moves this job's share`);
      }
    });
    const fixed = g.trainings.filter((t) => !(t.checkpoint ?? t.pacing === 'cooperative'));
    const shares = new Set(fixed.map((t) => t.mpsSharePct));
    if (shares.size > 1) throw new WorkloadsFileError(`${source} is invalid: /gpus/${i}/trainings: jobs that cannot checkpoint on one GPU share one MPS share; give them the same mpsSharePct`);
  });
  return value;
}

/** Reads a workloads file for the nvidia backend: YAML (.yaml, .yml) or JSON. */
export function loadNvidiaWorkloads(file: string): NvidiaWorkloadsFile {
  const text = readWorkloadsText(file);
  const ext = extname(file).toLowerCase();
  let value: unknown;
  try {
    value = ext === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new WorkloadsFileError(`workloads file ${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML or JSON'}: ${(err as Error).message.split('\n')[0]}`);
  }
  return parseNvidiaWorkloads(value, `workloads file ${file}`);
}

/** Where a runner keeps its state (paused processes, MPS pipes, leases, checkpoints) by default. */
export function defaultStateDir(hostId: string): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  return runtime ? join(runtime, 'gpucolo', hostId) : join(tmpdir(), `gpucolo-${process.getuid?.() ?? 'user'}`, hostId);
}

/** Finds the GPU a workload names (index or UUID) among the discovered ones. */
export function resolveGpu(gpus: NvidiaGpu[], want: number | string, where: string): NvidiaGpu {
  const known = gpus.map((g) => `${g.index} (${g.uuid})`).join(', ') || 'none';
  const found = typeof want === 'number' || /^\d+$/.test(want)
    ? gpus.find((g) => g.index === Number(want))
    : gpus.find((g) => g.uuid.toLowerCase() === want.toLowerCase());
  if (!found) throw new WorkloadsFileError(`${where}: no GPU ${JSON.stringify(want)} on this host; nvidia-smi lists ${known}`);
  return found;
}

/** A workload matched to the GPU it names. */
export interface ChosenGpu {
  gpu: NvidiaGpu;
  w: NvidiaGpuWorkload;
}

/**
 * Discovers the GPUs with nvidia-smi and matches each workload to the GPU it names (index or UUID);
 * starts nothing. A GPU that is absent, named twice or unmanageable (MIG) is refused with why.
 */
export async function matchNvidiaGpus(workloads: NvidiaWorkloadsFile, log: (line: string) => void, binaries = binariesFromEnv()): Promise<ChosenGpu[]> {
  const discovery = await queryGpus({ binaries });
  for (const w of discovery.warnings) log(`nvidia-smi: ${w}`);
  if (discovery.gpus.length === 0) throw new Error('nvidia-smi reports no NVIDIA GPU on this host (No devices were found)');
  const { skipped } = manageableGpus(discovery.gpus);
  const chosen = workloads.gpus.map((w, i) => {
    const gpu = resolveGpu(discovery.gpus, w.gpu, `workloads /gpus/${i}/gpu`);
    const skip = skipped.find((s) => s.gpu.uuid === gpu.uuid);
    if (skip) throw new Error(`GPU ${gpu.index} (${gpu.uuid}) cannot be managed: ${skip.reason}`);
    for (const x of [...w.services, ...w.trainings]) {
      if (x.memoryLimitMiB !== undefined && gpu.memoryTotalMiB !== null && x.memoryLimitMiB > gpu.memoryTotalMiB) {
        throw new WorkloadsFileError(`workloads /gpus/${i}: ${x.id}'s memoryLimitMiB ${x.memoryLimitMiB} is more than GPU ${gpu.index} has (${gpu.memoryTotalMiB} MiB)`);
      }
    }
    return { gpu, w };
  });
  const dup = chosen.find((c, i) => chosen.findIndex((d) => d.gpu.uuid === c.gpu.uuid) !== i);
  if (dup) throw new WorkloadsFileError(`workloads file names GPU ${dup.gpu.index} (${dup.gpu.uuid}) twice: give each GPU one entry`);
  return chosen;
}

export interface NvidiaBackendOptions {
  hostId: string;
  workloads: NvidiaWorkloadsFile;
  /** The workloads matched to GPUs (matchNvidiaGpus). */
  chosen: ChosenGpu[];
  /** Source of relative paths in the workloads file (its folder). */
  baseDir: string;
  stateDir?: string;
  binaries?: NvidiaBinaries;
  /** The host runner's clock (ms). */
  clock: () => number;
  log: (line: string) => void;
}

export interface NvidiaBackend {
  gpus: number;
  /** What the actors need to know of the workloads (ids and SLOs), in the simulated backend's shape. */
  workloads: WorkloadsFile;
  makeDevice: (index: number, gpuId: string, initial: Knobs) => GpuDevice;
  devices: NvidiaGpuDevice[];
  stateDir: string;
  gpuList: NvidiaGpu[];
  /** Stops every workload and MPS daemon not yet stopped and releases the state directory. */
  close(): Promise<void>;
}

type ProcessFields = Pick<NvidiaGpuWorkload['services'][number], 'restart' | 'restartBackoffS' | 'restartLimit' | 'memoryLimitMiB'>;
/** The restart policy and memory limit of a launched workload, from its fields (defaults: DEFAULT_RESTART). */
const processOptions = (w: ProcessFields): { restart: RestartPolicy; memoryLimitMiB?: number } => {
  const backoffMs = (w.restartBackoffS ?? DEFAULT_RESTART.backoffMs / 1000) * 1000;
  return {
    restart: { ...DEFAULT_RESTART, mode: w.restart ?? DEFAULT_RESTART.mode, backoffMs, maxBackoffMs: Math.max(DEFAULT_RESTART.maxBackoffMs, backoffMs), limit: w.restartLimit ?? DEFAULT_RESTART.limit },
    ...(w.memoryLimitMiB !== undefined ? { memoryLimitMiB: w.memoryLimitMiB } : {}),
  };
};

const latencyOf = (s: NvidiaGpuWorkload['services'][number]): LatencySource => {
  const l = s.latency;
  if (l.source === 'stdout') return { kind: 'stdout' };
  if (l.source === 'triton') return { kind: l.metric === 'duration' ? 'triton-duration' : 'triton-summary', url: l.url, model: l.model, intervalMs: l.intervalMs ?? 1000 };
  return { kind: 'vllm', url: l.url, ...(l.model ? { model: l.model } : {}), intervalMs: l.intervalMs ?? 1000 };
};

/**
 * Claims the matched GPUs: the state directory (resuming anything a dead runner left paused) and one
 * MPS control daemon per GPU. Workloads launch when the host runner builds each device.
 */
export async function prepareNvidiaBackend(o: NvidiaBackendOptions): Promise<NvidiaBackend> {
  const binaries = o.binaries ?? binariesFromEnv();
  const chosen = o.chosen;
  const stateDir = resolve(o.stateDir ?? defaultStateDir(o.hostId));
  const guard = new PauseGuard({ stateDir, log: o.log });
  guard.start();
  // Workloads a crashed runner left running would share the GPU with the ones launched below.
  await guard.reapLeftovers();
  const mps: MpsControl[] = [];
  // A device quits its own daemon on close; these are the daemons of GPUs whose device was never built.
  const withDevice = new Set<number>();
  const stopMps = async () => {
    for (const [i, m] of mps.entries()) {
      if (!withDevice.has(i)) await m.quit().catch((err) => o.log(`MPS daemon ${m.o.pipeDir}: ${(err as Error).message}`));
    }
  };
  try {
    for (const { gpu } of chosen) {
      const m = new MpsControl({ binaries, pipeDir: join(stateDir, `mps${gpu.index}`, 'pipe'), logDir: join(stateDir, `mps${gpu.index}`, 'log'), gpuUuid: gpu.uuid, log: o.log });
      mps.push(m); // before start(): a daemon that started and then failed its checks is still quit
      await m.start();
    }
  } catch (err) {
    await stopMps();
    guard.close();
    throw err;
  }

  const devices: NvidiaGpuDevice[] = [];
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(o.baseDir, p));
  const makeDevice = (index: number, gpuId: string, initial: Knobs): GpuDevice => {
    const { gpu, w } = chosen[index]!;
    o.log(`${gpuId}: NVIDIA GPU ${gpu.index} ${gpu.name} (${gpu.uuid})`);
    const device = new NvidiaGpuDevice({
      gpuId, gpu, clock: o.clock, mps: mps[index]!, guard, dir: join(stateDir, gpuId), initial, log: o.log,
      ...(o.workloads.leaseTtlMs ? { leaseTtlMs: o.workloads.leaseTtlMs } : {}),
      services: w.services.map((s) => ({
        id: s.id, latency: latencyOf(s),
        ...(s.command ? { command: s.command } : {}), ...(s.cwd ? { cwd: abs(s.cwd)! } : { cwd: o.baseDir }), ...(s.env ? { env: s.env } : {}),
        ...(s.stopGraceS !== undefined ? { stopGraceMs: s.stopGraceS * 1000 } : {}),
        ...processOptions(s),
      })),
      trainings: w.trainings.map((t) => ({
        id: t.id, command: t.command, pacing: t.pacing, cwd: abs(t.cwd) ?? o.baseDir,
        ...(t.env ? { env: t.env } : {}), ...(t.checkpointGraceS !== undefined ? { checkpointGraceMs: t.checkpointGraceS * 1000 } : {}),
        ...(t.checkpoint !== undefined ? { checkpoint: t.checkpoint } : {}), ...(t.mpsSharePct !== undefined ? { mpsSharePct: t.mpsSharePct } : {}),
        ...processOptions(t),
      })),
    });
    // Known before anything launches, so a launch that fails half-way is still cleaned up by close().
    devices.push(device);
    withDevice.add(index);
    device.start();
    return device;
  };

  let closed = false;
  return {
    gpus: chosen.length,
    workloads: {
      ...(o.workloads.policy ? { policy: o.workloads.policy as PolicyName } : {}),
      gpus: chosen.map(({ w }) => ({
        services: w.services.map((s) => ({ id: s.id, sloMs: s.sloMs, batch: 1, rateRps: 0 })),
        trainings: w.trainings.map((t) => ({ id: t.id })),
      })),
    },
    makeDevice, devices, stateDir, gpuList: chosen.map((c) => c.gpu),
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(devices.map((d) => d.close()));
      await stopMps();
      guard.close();
    },
  };
}
