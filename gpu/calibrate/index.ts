// Calibration: measure a GPU (real or simulated) through the GpuDevice interface and fit a gpu/model profile.
export { CalibrationPlanSchema, DEFAULT_PLAN, QUICK_PLAN, makePlan, estimatePlanMs, PlanError } from './plan.ts';
export type { CalibrationPlan } from './plan.ts';
export { runCalibration, latencyStats, CalibrationError, LOAD_ON_RPS } from './procedure.ts';
export type { Plant, Measurements, LatencyStats, AlonePoint, ColocPoint, IterationPoint, RestartPoint } from './procedure.ts';
export { fitProfile, fittedPoints, lognormalP99OverMean } from './fit.ts';
export type { FitPoint, FitResult, FitOptions } from './fit.ts';
export { simPlant, SIM_SERVICE_ID, SIM_JOB_ID } from './sim-plant.ts';
export { startNvidiaPlant, CalibrationNvidiaDevice, BATCH_PLACEHOLDER } from './nvidia-plant.ts';
export type { CalibrationServiceSpec, NvidiaPlantOptions } from './nvidia-plant.ts';
