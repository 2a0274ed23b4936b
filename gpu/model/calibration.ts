import { pathToFileURL } from 'node:url';
import { GpuModel, type ArrivalProcess } from './gpu-model.ts';
import type { GpuProfile } from './profile-schema.ts';
import { loadProfile } from './profiles.ts';

/** One Fig. 4 setting of the paper and the mean latency it measured on an RTX 3090. */
export interface Fig4Case {
  label: string;
  mpsEnabled: boolean;
  mpsSharePct: number;
  sleepMs: number;
  paperMeanMs: number;
}

/** The paper's six Fig. 4 measurements (ResNet-50 inference next to Wide ResNet-101 training). */
export const FIG4_CASES: readonly Fig4Case[] = [
  { label: 'MPS 80%, no sleep', mpsEnabled: true, mpsSharePct: 80, sleepMs: 0, paperMeanMs: 15.1 },
  { label: 'MPS 20%, no sleep', mpsEnabled: true, mpsSharePct: 20, sleepMs: 0, paperMeanMs: 5.62 },
  { label: 'no MPS, sleep 0.2 s', mpsEnabled: false, mpsSharePct: 100, sleepMs: 200, paperMeanMs: 6.68 },
  { label: 'no MPS, sleep 0.8 s', mpsEnabled: false, mpsSharePct: 100, sleepMs: 800, paperMeanMs: 5.52 },
  { label: 'MPS 80%, sleep 0.2 s', mpsEnabled: true, mpsSharePct: 80, sleepMs: 200, paperMeanMs: 7.95 },
  { label: 'MPS 80%, sleep 0.8 s', mpsEnabled: true, mpsSharePct: 80, sleepMs: 800, paperMeanMs: 6.2 },
];

export interface Fig4Options {
  seed?: number;
  /** Simulated span measured, after warm-up. Default 120 s. */
  durationMs?: number;
  /** Simulated span discarded first. Default 5 s. */
  warmupMs?: number;
}

/** Mean per-batch latency and training iterations/s of one Fig. 4 case under the profile's fig4 experiment. */
export function measureFig4Case(profile: GpuProfile, c: Fig4Case, options: Fig4Options = {}): { meanMs: number; itersPerSec: number } {
  const exp = profile.experiments?.['fig4'];
  const durationMs = options.durationMs ?? 120_000;
  const warmupMs = options.warmupMs ?? 5_000;
  const model = new GpuModel({
    profile,
    seed: options.seed ?? 42,
    mpsEnabled: c.mpsEnabled,
    services: [{ id: 'resnet50', batch: exp?.inferenceBatch ?? 6, rateRps: exp?.rateRps ?? 1000, arrival: (exp?.arrival ?? 'closed') as ArrivalProcess }],
    trainings: [{ id: 'wrn101', mpsSharePct: c.mpsSharePct, pacing: { mode: 'per-iteration', sleepMs: c.sleepMs } }],
  });
  model.advanceTo(warmupMs);
  model.takeCompletions('resnet50');
  const itersBefore = model.trainingProgress('wrn101');
  model.advanceTo(warmupMs + durationMs);
  const { completions } = model.takeCompletions('resnet50');
  let sum = 0;
  for (const done of completions) sum += done.latencyMs;
  const iters = model.trainingProgress('wrn101') - itersBefore;
  return { meanMs: sum / completions.length, itersPerSec: (iters * 1000) / durationMs };
}

/** Every Fig. 4 case: paper against model, with the relative error. */
export function fig4Table(profile: GpuProfile, options: Fig4Options = {}) {
  return FIG4_CASES.map((c) => {
    const m = measureFig4Case(profile, c, options);
    return { label: c.label, paperMs: c.paperMeanMs, modelMs: m.meanMs, errorPct: (m.meanMs / c.paperMeanMs - 1) * 100, itersPerSec: m.itersPerSec };
  });
}

// `node --import tsx gpu/model/calibration.ts [profile]` prints the table: the check behind the profile's fit.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = fig4Table(loadProfile(process.argv[2] ?? 'rtx3090-resnet50-wrn101'));
  for (const r of rows) {
    console.log(`${r.label.padEnd(22)} paper ${r.paperMs.toFixed(2).padStart(6)} ms  model ${r.modelMs.toFixed(2).padStart(6)} ms  ${r.errorPct >= 0 ? '+' : ''}${r.errorPct.toFixed(1)}%  training ${r.itersPerSec.toFixed(2)} it/s`);
  }
}
