import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfile, type GpuProfile } from '../../gpu/model/index.ts';
import { prng as rng } from '../control/plant.ts';

/** A temporary folder removed at exit (short: MPS control sockets must fit in 107 bytes). */
export function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gc-${tag}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A plant that is in no file of this repository: every number the calibration should recover drawn at random
 * (log-uniform) over and past the built-in family's span, the unmeasured ones perturbed too; with a heavy tail
 * when `tail` is set.
 */
export function hiddenProfile(seed: number, tail = false): GpuProfile {
  const r = rng(seed * 104729 + 17);
  const logU = (lo: number, hi: number) => lo * Math.pow(hi / lo, r());
  const p = loadProfile('rtx3090-resnet50-wrn101');
  p.name = `hidden-${seed}`;
  p.source = 'drawn at random by test/calibrate/helpers.ts';
  p.gpu = { name: `Hidden GPU ${seed}`, memoryMiB: Math.round(logU(8000, 200000)) };
  p.inference = { model: 'hidden', fixedMs: logU(0.4, 5), perItemMs: logU(0.03, 1.2), jitterSigma: logU(0.02, 0.2), mpsShareExponent: logU(0.3, 1) };
  p.interference = { mpsAt100Pct: logU(0.3, 10), mpsShareExponent: logU(0.8, 2.5), timeSlicing: logU(0.3, 2), tailProb: tail ? logU(0.015, 0.06) : 0, tailFactor: tail ? logU(3, 8) : 1 };
  p.training = { model: 'hidden', iterAloneMs: logU(30, 700), shareExponent: logU(0.4, 1.05), slowdownWhileInferring: logU(0.01, 0.35), timeSlicingSpeed: logU(0.3, 0.9) };
  p.mpsRestartMs = logU(2000, 16000);
  p.inferenceRestartMs = logU(2000, 16000);
  p.sleepChangeMs = logU(1, 10);
  delete p.experiments;
  delete p.provenance;
  return p;
}

export function writeProfile(dir: string, p: GpuProfile): string {
  const file = join(dir, `${p.name}.json`);
  writeFileSync(file, JSON.stringify(p, null, 2));
  return file;
}

/** (got - want) / want, %. */
export const errPct = (got: number, want: number) => ((got - want) / want) * 100;

/** The five numbers the bar names, fitted against hidden, each as a relative error in %. */
export function barErrors(fit: GpuProfile, hidden: GpuProfile): Record<string, number> {
  return {
    'I(100%)': errPct(fit.interference.mpsAt100Pct, hidden.interference.mpsAt100Pct),
    'interference exponent': errPct(fit.interference.mpsShareExponent, hidden.interference.mpsShareExponent),
    'training share exponent': errPct(fit.training.shareExponent, hidden.training.shareExponent),
    'iteration alone': errPct(fit.training.iterAloneMs, hidden.training.iterAloneMs),
    'MPS restart': errPct(fit.mpsRestartMs, hidden.mpsRestartMs),
  };
}
