import { PROFILE_DEFAULTS, type GpuProfile } from './profile-schema.ts';

// The profile's curves, one function each, so the model, the fitting script and the tests share them.

/** Mean time of one inference batch alone on the GPU, ms (linear in batch size). */
export function serviceMs(profile: GpuProfile, batch: number): number {
  return profile.inference.fixedMs + profile.inference.perItemMs * batch;
}

/**
 * Inference speed alone under its own MPS cap, as a fraction of uncapped speed: (share/100)^exponent. Exactly 1
 * at 100% (the default: inference uncapped).
 */
export function inferenceShareSpeed(profile: GpuProfile, inferenceSharePct: number): number {
  if (inferenceSharePct >= 100) return 1;
  const exponent = profile.inference.mpsShareExponent ?? PROFILE_DEFAULTS.inferenceMpsShareExponent;
  return Math.pow(inferenceSharePct / 100, exponent);
}

/** Probability that a batch is a tail batch, and the factor on the interference it sees (defaults: 0 and 1). */
export function tailModel(profile: GpuProfile): { prob: number; factor: number } {
  return {
    prob: profile.interference.tailProb ?? PROFILE_DEFAULTS.tailProb,
    factor: profile.interference.tailFactor ?? PROFILE_DEFAULTS.tailFactor,
  };
}

/** Interference I of one awake training job; inference speed is 1 / (1 + sum of I) (uncapped inference, no tail). */
export function trainingInterference(profile: GpuProfile, mpsSharePct: number, mpsEnabled: boolean): number {
  if (!mpsEnabled) return profile.interference.timeSlicing;
  return profile.interference.mpsAt100Pct * Math.pow(mpsSharePct / 100, profile.interference.mpsShareExponent);
}

/** Training speed as a fraction of alone-on-the-GPU speed, for one awake job. */
export function trainingSpeed(
  profile: GpuProfile,
  mpsSharePct: number,
  mpsEnabled: boolean,
  inferenceBusy: boolean,
): number {
  if (!mpsEnabled) return inferenceBusy ? profile.training.timeSlicingSpeed : 1;
  const shareSpeed = Math.pow(mpsSharePct / 100, profile.training.shareExponent);
  return inferenceBusy ? shareSpeed / (1 + profile.training.slowdownWhileInferring) : shareSpeed;
}

/** Iteration time of one awake job next to busy inference, ms (the paper's 0.4-0.8 s). */
export function iterationMs(profile: GpuProfile, mpsSharePct: number, mpsEnabled: boolean): number {
  return profile.training.iterAloneMs / trainingSpeed(profile, mpsSharePct, mpsEnabled, true);
}
