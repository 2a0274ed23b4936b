import { MAX_DUTY } from '../../control/index.ts';
import { loadProfile, parseProfile, type GpuProfile } from '../model/index.ts';
import type { Measurements } from './procedure.ts';

/** One measured point against the fitted profile's value at the same setting. */
export interface FitPoint {
  kind: 'inference alone' | 'latency noise' | 'next to training' | 'training alone' | 'training next to inference' | 'restart';
  setting: string;
  unit: 'ms' | 'ratio';
  measured: number;
  fitted: number;
  /** (fitted - measured) / measured, %. */
  errorPct: number;
}

export interface FitResult {
  profile: GpuProfile;
  points: FitPoint[];
  /** Notes on what could not be fitted and was assumed instead. */
  notes: string[];
}

export interface FitOptions {
  name: string;
  /** Where the measurements came from, for the profile's `source` (e.g. the command line). */
  how: string;
  inferenceModel: string;
  trainingModel: string;
  /** Unmeasured fields come from this profile (default: the built-in RTX 3090 fit). */
  base?: GpuProfile;
  /** ISO date of the run. */
  date?: string;
}

/** Least squares y = a + b x. */
function linear(xs: number[], ys: number[]): { a: number; b: number } {
  const n = xs.length;
  const mx = xs.reduce((s, x) => s + x, 0) / n;
  const my = ys.reduce((s, y) => s + y, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i]! - mx) * (ys[i]! - my); sxx += (xs[i]! - mx) ** 2; }
  const b = sxx > 0 ? sxy / sxx : 0;
  return { a: my - b * mx, b };
}

const round = (x: number, digits = 4) => (x === 0 || !Number.isFinite(x) ? x : Number(x.toPrecision(digits)));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
/** p99 over mean of a unit-mean lognormal with this sigma. */
export const lognormalP99OverMean = (sigma: number) => Math.exp(2.3263 * sigma - (sigma * sigma) / 2);

/**
 * Fits a profile (gpu/model's schema) to calibration measurements:
 * - inference.fixedMs, perItemMs: least squares of the mean alone latency against batch size;
 * - inference.jitterSigma: the standard deviation of ln(latency) alone (the model's unit-mean lognormal);
 * - interference.mpsAt100Pct, mpsShareExponent: I(share) = median next to training without sleep / median alone - 1
 *   (medians: the noise and any tail batches cancel), fitted as a power law on a log-log line;
 * - interference.tailProb, tailFactor: batches next to training far above the median (beyond exp(max(4 sigma, 0.3))),
 *   their share and the interference they saw (kept at 0 and 1 when fewer than 10 such batches were seen);
 * - training.iterAloneMs, shareExponent: the alone iteration time against share on a log-log line;
 * - training.slowdownWhileInferring: iteration time next to busy inference over alone, less 1 (mean over shares);
 * - mpsRestartMs: median over restarts of (command to first iteration) less that share's iteration time.
 * Not measured (calibrate runs everything under MPS, never caps inference): time-slicing, inference's own share
 * exponent, the sleep-change cost; they come from the base profile and are listed as assumed.
 */
export function fitProfile(m: Measurements, o: FitOptions): FitResult {
  const base = o.base ?? loadProfile('rtx3090-resnet50-wrn101');
  const notes: string[] = [];
  const measured: Record<string, string> = {};
  const derived: Record<string, string> = {};
  const assumed: Record<string, string> = {};

  // Inference alone.
  if (m.alone.length === 0) throw new Error('no inference-alone measurement to fit (the budget ran out before the first step)');
  let fixedMs: number, perItemMs: number;
  if (new Set(m.alone.map((p) => p.batch)).size >= 2) {
    const l = linear(m.alone.map((p) => p.batch), m.alone.map((p) => p.meanMs));
    perItemMs = Math.max(0, l.b);
    fixedMs = Math.max(0, l.a);
    measured['/inference/fixedMs'] = `intercept of the mean latency alone against batch size (${m.alone.map((p) => p.batch).join(', ')}), closed loop`;
    measured['/inference/perItemMs'] = 'slope of the mean latency alone against batch size';
  } else {
    fixedMs = m.alone[0]!.meanMs;
    perItemMs = 0;
    measured['/inference/fixedMs'] = `mean latency alone at the service's fixed batch ${m.alone[0]!.batch}`;
    assumed['/inference/perItemMs'] = 'the service runs one batch size (its command has no {batch}): the whole time is put in fixedMs';
    notes.push('batch sweep not run (the inference command has no {batch}): perItemMs set to 0, fixedMs to the one batch size measured');
  }
  const serviceAt = (b: number) => fixedMs + perItemMs * b;
  const noise = m.noise;
  const sigma = noise ? Math.min(1, noise.sigmaLog) : base.inference.jitterSigma;
  if (noise) measured['/inference/jitterSigma'] = `standard deviation of ln(latency) alone at batch ${noise.batch} over ${noise.count} requests`;
  else { assumed['/inference/jitterSigma'] = 'the base profile\'s (the noise window was not run)'; notes.push('latency noise not measured: jitterSigma assumed'); }
  const aloneMedian = noise?.medianMs ?? serviceAt(m.coloc[0]?.batch ?? 1) * Math.exp(-sigma * sigma / 2);
  const aloneMean = noise?.meanMs ?? serviceAt(m.coloc[0]?.batch ?? 1);

  // Interference against share (no sleep): I = median next to training / median alone - 1 first (tail batches do
  // not move it); then, when no tail is found, from the means (what the profile's mean latencies rest on).
  const noSleep = m.coloc.filter((p) => p.duty === 0);
  const powerLaw = (iOf: { share: number; i: number }[], what: string) => {
    const usable = iOf.filter((x) => x.i > 0.01);
    if (usable.length >= 2 && new Set(usable.map((x) => x.share)).size >= 2) {
      const l = linear(usable.map((x) => Math.log(x.share / 100)), usable.map((x) => Math.log(x.i)));
      return { a: Math.exp(l.a), e: Math.max(0.01, l.b), how: `power law through I = ${what} at shares ${usable.map((x) => x.share).join(', ')}%`, assumedExp: false };
    }
    if (usable.length === 1) {
      const e = base.interference.mpsShareExponent;
      return { a: usable[0]!.i / Math.pow(usable[0]!.share / 100, e), e, how: `I = ${what} at ${usable[0]!.share}%, scaled with the assumed exponent`, assumedExp: true };
    }
    return { a: Math.max(0, ...iOf.map((x) => x.i)), e: base.interference.mpsShareExponent, how: 'no interference above 1% was seen at any share', assumedExp: true };
  };
  const byMedian = powerLaw(noSleep.map((p) => ({ share: p.sharePct, i: p.medianMs / aloneMedian - 1 })), 'median next to awake training / median alone - 1');

  // Tails next to training.
  let tailProb = 0, tailFactor = 1;
  const cut = Math.exp(Math.max(4 * sigma, 0.3));
  // A tail batch stands out only where the interference is large enough: find the tail at the share of the largest
  // I first, then pool the shares where a tail batch of that factor would land well past the cut.
  const iAt = (share: number) => byMedian.a * Math.pow(share / 100, byMedian.e);
  const beyond = (p: (typeof noSleep)[number]) => {
    const i = iAt(p.sharePct);
    return p.samples.filter((x) => x > p.medianMs * cut).map((x) => (x / aloneMean - 1) / i);
  };
  const ranked = noSleep.filter((p) => iAt(p.sharePct) > 0.01).sort((a, b) => iAt(b.sharePct) - iAt(a.sharePct));
  const top = ranked[0] ? beyond(ranked[0]) : [];
  const tf0 = top.length ? Math.max(1, median(top)) : 1;
  let total = 0;
  const factors: number[] = [];
  for (const p of ranked) {
    const i = iAt(p.sharePct);
    if (p !== ranked[0] && (1 + tf0 * i) / (1 + i) < 1.5 * cut) continue;
    total += p.samples.length;
    factors.push(...beyond(p));
  }
  // Tails are batches far out next to training that are not there alone (beyond the noise's own share past the cut).
  const aloneBeyond = noise ? noise.samples.filter((x) => x > noise.medianMs * cut).length / Math.max(1, noise.samples.length) : 0;
  if (factors.length >= 10 && total > 0 && factors.length / total > 3 * aloneBeyond) {
    tailProb = factors.length / total;
    tailFactor = Math.max(1, median(factors));
    measured['/interference/tailProb'] = `share of batches next to training without sleep above ${cut.toFixed(2)} x the median (${factors.length} of ${total}; alone ${(100 * aloneBeyond).toFixed(2)}%)`;
    measured['/interference/tailFactor'] = 'median over those batches of (latency / mean alone - 1) / I';
  } else {
    measured['/interference/tailProb'] = `no tail: ${factors.length} of ${total} batches next to training above ${cut.toFixed(2)} x the median (alone ${(100 * aloneBeyond).toFixed(2)}%; 10 and 3x the alone share needed)`;
    derived['/interference/tailFactor'] = 'no tail batches (see tailProb)';
  }
  const chosen = tailProb > 0 ? byMedian : powerLaw(noSleep.map((p) => ({ share: p.sharePct, i: p.meanMs / aloneMean - 1 })), 'mean next to awake training / mean alone - 1');
  const mpsAt100Pct = chosen.a, exponent = chosen.e;
  measured['/interference/mpsAt100Pct'] = chosen.how;
  if (chosen.assumedExp) {
    assumed['/interference/mpsShareExponent'] = 'the base profile\'s: interference was seen at fewer than two shares';
    notes.push('interference seen at fewer than two shares: its exponent is assumed');
  } else {
    measured['/interference/mpsShareExponent'] = 'slope of ln I against ln(share / 100)';
  }

  // Training.
  const alone = m.iterations.filter((p) => !p.inference);
  const withInf = m.iterations.filter((p) => p.inference);
  let iterAloneMs: number, shareExponent: number;
  if (alone.length >= 2) {
    const l = linear(alone.map((p) => Math.log(p.sharePct / 100)), alone.map((p) => Math.log(p.iterMs)));
    iterAloneMs = Math.exp(l.a);
    shareExponent = Math.max(0, -l.b);
    measured['/training/iterAloneMs'] = `power law through the iteration time alone at shares ${alone.map((p) => p.sharePct).join(', ')}% (value at 100%)`;
    measured['/training/shareExponent'] = 'minus the slope of ln(iteration time alone) against ln(share / 100)';
  } else if (withInf.length >= 2) {
    const l = linear(withInf.map((p) => Math.log(p.sharePct / 100)), withInf.map((p) => Math.log(p.iterMs)));
    iterAloneMs = Math.exp(l.a) / (1 + base.training.slowdownWhileInferring);
    shareExponent = Math.max(0, -l.b);
    measured['/training/shareExponent'] = 'from the iteration time next to inference (training alone was not measured)';
    derived['/training/iterAloneMs'] = 'iteration time next to inference at 100% divided by 1 + the base profile\'s slowdownWhileInferring';
    notes.push('training alone not measured (budget): iterAloneMs derived with an assumed slowdown');
  } else {
    throw new Error('fewer than two training shares measured: no training curve to fit (raise --plan budgetMs or use fewer steps)');
  }
  const iterAt = (share: number) => iterAloneMs / Math.pow(share / 100, shareExponent);
  let slowdown = base.training.slowdownWhileInferring;
  if (withInf.length && alone.length >= 2) {
    slowdown = Math.max(0, withInf.reduce((s, p) => s + p.iterMs / iterAt(p.sharePct), 0) / withInf.length - 1);
    measured['/training/slowdownWhileInferring'] = `iteration time next to back-to-back inference over the fitted alone time, less 1 (mean over ${withInf.length} shares)`;
  } else if (!measured['/training/shareExponent']?.includes('next to')) {
    assumed['/training/slowdownWhileInferring'] = 'the base profile\'s (training next to inference not measured)';
  } else {
    assumed['/training/slowdownWhileInferring'] = 'the base profile\'s (training alone not measured)';
  }

  // Restarts.
  const restartMs: number[] = [];
  for (const r of m.restarts) {
    const it = m.iterations.find((p) => p.sharePct === r.sharePct && p.inference === r.inference);
    const iter = it?.iterMs ?? iterAt(r.sharePct) * (r.inference ? 1 + slowdown : 1);
    restartMs.push(Math.max(0, r.totalMs - iter));
  }
  if (restartMs.length === 0) throw new Error('no training restart measured');
  const mpsRestartMs = median(restartMs);
  if (m.device.memoryMiB > 0) measured['/gpu/memoryMiB'] = 'total memory the device reports (nvidia-smi memory.total on the NVIDIA backend)';
  else assumed['/gpu/memoryMiB'] = `the base profile ${base.name}'s: the device reported no memory size`;
  measured['/mpsRestartMs'] = `median over ${restartMs.length} restarts of the time from the share change to the first iteration, less one iteration`;
  derived['/inferenceRestartMs'] = 'as mpsRestartMs: calibrate never restarts inference under a new share of its own';

  for (const [k, why] of [
    ['/inference/mpsShareExponent', 'inference never runs under its own MPS cap in calibrate'],
    ['/interference/timeSlicing', 'calibrate runs everything under MPS (no time-slicing point)'],
    ['/training/timeSlicingSpeed', 'calibrate runs everything under MPS (no time-slicing point)'],
    ['/sleepChangeMs', 'not measured'],
  ] as const) assumed[k] = `the base profile ${base.name}'s: ${why}`;

  const date = o.date ?? new Date().toISOString().slice(0, 10);
  const profile = parseProfile({
    name: o.name,
    source: `Measured by ${o.how} on ${date}: ${m.alone.length} batch sizes alone, ${m.coloc.length} co-located points (shares ${[...new Set(m.coloc.map((p) => p.sharePct))].join('/')}%, duties ${[...new Set(m.coloc.map((p) => p.duty))].join('/')}), ${m.iterations.length} training points, ${m.restarts.length} restarts, ${(m.deviceMs / 60000).toFixed(1)} min of device time. Device: ${m.device.name}.${m.skipped.length ? ` Skipped (budget): ${m.skipped.join('; ')}.` : ''}`,
    gpu: { name: m.device.name, memoryMiB: m.device.memoryMiB > 0 ? m.device.memoryMiB : base.gpu.memoryMiB },
    inference: {
      model: o.inferenceModel, fixedMs: round(fixedMs), perItemMs: round(perItemMs), jitterSigma: round(sigma),
      mpsShareExponent: base.inference.mpsShareExponent ?? 0.85,
    },
    interference: {
      mpsAt100Pct: round(mpsAt100Pct), mpsShareExponent: round(exponent), timeSlicing: base.interference.timeSlicing,
      tailProb: round(tailProb), tailFactor: round(tailFactor),
    },
    training: {
      model: o.trainingModel, iterAloneMs: round(iterAloneMs), shareExponent: round(shareExponent),
      slowdownWhileInferring: round(slowdown), timeSlicingSpeed: base.training.timeSlicingSpeed,
    },
    mpsRestartMs: round(mpsRestartMs), inferenceRestartMs: round(mpsRestartMs), sleepChangeMs: base.sleepChangeMs,
    experiments: {
      calibrate: {
        inferenceBatch: m.coloc[0]?.batch ?? m.noise?.batch ?? m.alone[0]!.batch, arrival: 'closed',
        note: 'calibrate\'s inference load: a closed loop, the next batch sent when the last returns',
      },
    },
    provenance: { measured, ...(Object.keys(derived).length ? { derived } : {}), assumed },
  }, `fitted profile ${o.name}`);

  return { profile, points: fittedPoints(m, profile), notes };
}

/** Every measured point against the fitted profile's value there. */
export function fittedPoints(m: Measurements, p: GpuProfile): FitPoint[] {
  const pts: FitPoint[] = [];
  const add = (kind: FitPoint['kind'], setting: string, unit: FitPoint['unit'], measured: number, fitted: number) =>
    pts.push({ kind, setting, unit, measured, fitted, errorPct: ((fitted - measured) / measured) * 100 });
  const svc = (b: number) => p.inference.fixedMs + p.inference.perItemMs * b;
  const i = (share: number) => p.interference.mpsAt100Pct * Math.pow(share / 100, p.interference.mpsShareExponent);
  const tp = p.interference.tailProb ?? 0, tf = p.interference.tailFactor ?? 1;
  const iter = (share: number) => p.training.iterAloneMs / Math.pow(share / 100, p.training.shareExponent);
  for (const a of m.alone) add('inference alone', `batch ${a.batch}, mean`, 'ms', a.meanMs, svc(a.batch));
  if (m.noise) add('latency noise', `batch ${m.noise.batch} alone, p99/mean`, 'ratio', m.noise.p99Ms / m.noise.meanMs, lognormalP99OverMean(p.inference.jitterSigma));
  for (const c of m.coloc) {
    // A closed loop's per-batch mean over awake (1 - d) and asleep d of the time: S / ((1 - d) / (1 + I') + d), with
    // I' the mean interference a batch sees (tail batches included).
    const d = Math.min(c.duty, MAX_DUTY);
    const ie = i(c.sharePct) * (1 - tp + tp * tf);
    add('next to training', `share ${c.sharePct}%, duty ${c.duty}, mean`, 'ms', c.meanMs, svc(c.batch) / ((1 - d) / (1 + ie) + d));
  }
  for (const t of m.iterations) {
    add(t.inference ? 'training next to inference' : 'training alone', `share ${t.sharePct}%`, 'ms', t.iterMs,
      iter(t.sharePct) * (t.inference ? 1 + p.training.slowdownWhileInferring : 1));
  }
  for (const r of m.restarts) {
    const it = m.iterations.find((x) => x.sharePct === r.sharePct && x.inference === r.inference)?.iterMs
      ?? iter(r.sharePct) * (r.inference ? 1 + p.training.slowdownWhileInferring : 1);
    add('restart', `${r.first ? 'start' : 'to'} ${r.sharePct}%${r.inference ? ', inference on' : ''}`, 'ms', Math.max(0, r.totalMs - it), p.mpsRestartMs);
  }
  return pts;
}
