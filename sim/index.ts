// sim/: the fleet-scale trace-driven simulator. What other folders may import.
export { loadFleetData, FleetDataError, DEFAULT_FLEET_DATA_DIR, FLEET_DATA_FILES } from './data.ts';
export type { FleetData } from './data.ts';
export { buildWorkload, GPU_SPECS, INFERENCE, BURST_DAYS, FORECAST_S, TRAINING_MEM_GIB_PER_GPU } from './workload.ts';
export type { Workload, WorkloadOptions } from './workload.ts';
export { simulateFleet, FLEET_POLICIES, SLOT_ORDERS, DEFAULT_PACK_LINE, MOVE_STARTUP_S, MOVE_DWELL_S, PACK_SLO_FRACTION, RELIEF_SLO_FRACTION, replicaCapacity, fastestFirst } from './fleet.ts';
export { FirstFit } from './firstfit.ts';
export type { FleetPolicy, FleetResult, SlotOrder, SimulateOptions } from './fleet.ts';
export { fluidGpu, tailRate } from './physics.ts';
export type { FluidGpu, FluidResult, FluidPacing, FluidTraining } from './physics.ts';
export { Settler, closedLoopCase, closedLoopStats, CL_RHO_GRID, CL_DEMAND_GRID, CL_WARMUP_S, CL_MEASURE_S } from './settle.ts';
export { closedLoop, scaledProfile } from './closed-loop.ts';
export type { ClosedLoopCase, ClosedLoopResult } from './closed-loop.ts';
export { fleetReportHtml } from './report.ts';
export { runFleet, runFleetParallel, runGroup, fleetGroups, savings, savingsMatched, fleetTable, fairTable, matchedSweep, MATCHED_BOUNDS, MATCHED_POLICIES } from './run.ts';
export type { FleetRun, FleetGroup, MatchedSweep, MatchedPoint, MatchedPolicy, RunFleetOptions } from './run.ts';
