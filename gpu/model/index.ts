// The simulated GPU: what other folders may import from gpu/model.
export { GpuModel } from './gpu-model.ts';
export type { ArrivalProcess, GpuModelOptions, ServiceOptions, ServiceStats, TrainingOptions } from './gpu-model.ts';
export { SimGpuDevice, ManualClock, createSimGpuDevice } from './sim-device.ts';
export type { ClockMs, CreateSimGpuDeviceOptions, SimGpuDeviceIdentity } from './sim-device.ts';
export { loadProfile, listProfiles, isProfileFile, plantFamily, MEASURED_PROFILES } from './profiles.ts';
export { GpuProfileSchema, PROFILE_DEFAULTS, parseProfile } from './profile-schema.ts';
export type { GpuProfile } from './profile-schema.ts';
export { serviceMs, trainingInterference, trainingSpeed, iterationMs, inferenceShareSpeed, tailModel } from './physics.ts';
export { FIG4_CASES, measureFig4Case, fig4Table } from './calibration.ts';
export type { Fig4Case, Fig4Options } from './calibration.ts';
export type { TrainingPhase } from './training-job.ts';
export { GpuModelError, ProfileError } from './errors.ts';
export { Rng, deriveSeed } from './rng.ts';
