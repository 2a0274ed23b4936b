// sim/: the fleet-scale trace-driven simulator. What other folders may import.
export { loadFleetData, FleetDataError, DEFAULT_FLEET_DATA_DIR, FLEET_DATA_FILES } from './data.ts';
export type { FleetData } from './data.ts';
export { buildWorkload, GPU_SPECS, INFERENCE, BURST_DAYS, FORECAST_S, TRAINING_MEM_GIB_PER_GPU } from './workload.ts';
export type { Workload, WorkloadOptions } from './workload.ts';
export { simulateFleet, FLEET_POLICIES, replicaCapacity, fastestFirst } from './fleet.ts';
export { FirstFit } from './firstfit.ts';
export type { FleetPolicy, FleetResult, SlotOrder, SimulateOptions } from './fleet.ts';
export { fluidGpu, tailRate } from './physics.ts';
export type { FluidGpu, FluidResult, FluidPacing, FluidTraining } from './physics.ts';
export { Settler } from './settle.ts';
export { fleetReportHtml } from './report.ts';
export { runFleet, savings, fleetTable } from './run.ts';
export type { FleetRun } from './run.ts';
