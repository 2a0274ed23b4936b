import { binariesFromEnv, manageableGpus, queryComputeApps, queryGpus, type NvidiaGpu } from '../gpu/nvidia/index.ts';

export interface GpusFlags {
  json?: boolean;
  nvidiaSmi?: string;
}

/**
 * The JSON row of one GPU; a value nvidia-smi could not give is null. Every GPU is listed: `managed` says
 * whether a host runner would take it, `reason` why not (null when managed).
 */
export function gpuJson(g: NvidiaGpu, reason: string | null = null) {
  return {
    index: g.index, uuid: g.uuid, name: g.name, memoryTotalMiB: g.memoryTotalMiB, memoryUsedMiB: g.memoryUsedMiB, utilizationPct: g.utilizationPct,
    managed: reason === null, reason,
  };
}

const cell = (v: number | null, unit = '') => (v === null ? 'n/a' : `${Math.round(v)}${unit}`);

/** `gpucolo gpus`: the NVIDIA GPUs a host runner would manage, from nvidia-smi. */
export async function gpusCommand(f: GpusFlags): Promise<void> {
  const binaries = binariesFromEnv(process.env, f.nvidiaSmi ? { nvidiaSmi: f.nvidiaSmi } : {});
  const { gpus, warnings } = await queryGpus({ binaries });
  for (const w of warnings) process.stderr.write(`gpucolo: ${w}\n`);
  const { skipped } = manageableGpus(gpus);
  for (const s of skipped) process.stderr.write(`gpucolo: GPU ${s.gpu.index} (${s.gpu.uuid}) is not managed: ${s.reason}\n`);
  if (f.json) {
    const reasonOf = (g: NvidiaGpu) => skipped.find((x) => x.gpu.uuid === g.uuid)?.reason ?? null;
    process.stdout.write(`${JSON.stringify({ gpus: gpus.map((g) => gpuJson(g, reasonOf(g))) })}\n`);
    return;
  }
  if (gpus.length === 0) {
    process.stdout.write('no NVIDIA GPU found (nvidia-smi: No devices were found)\n');
    return;
  }
  // Processes are shown in the table only: a failing process query never hides the GPU list.
  const apps = await queryComputeApps({ binaries }).catch((err: Error) => ({ apps: [], warnings: [`processes unknown: ${err.message}`] }));
  for (const w of apps.warnings) process.stderr.write(`gpucolo: ${w}\n`);
  const rows = gpus.map((g) => {
    const procs = apps.apps.filter((a) => a.gpuUuid === g.uuid).length;
    const reason = skipped.find((s) => s.gpu.uuid === g.uuid)?.reason;
    return [String(g.index), g.uuid, g.name, `${cell(g.memoryUsedMiB)} / ${cell(g.memoryTotalMiB)}`, cell(g.utilizationPct, '%'), String(procs), reason ? `no: ${reason.split(':')[0]}` : 'yes'];
  });
  const head = ['gpu', 'uuid', 'name', 'memory MiB used / total', 'util', 'procs', 'managed'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  for (const a of apps.apps) {
    const g = gpus.find((x) => x.uuid === a.gpuUuid);
    process.stdout.write(`  process ${a.pid} ${a.processName ?? '?'} on GPU ${g?.index ?? a.gpuUuid}, ${cell(a.usedMemoryMiB, ' MiB')}\n`);
  }
}
