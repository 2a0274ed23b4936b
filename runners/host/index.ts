// host/: the host runtime. host.ts starts and stops a host; gpu-wiring.ts puts one GPU together (gpu-actors.ts:
// its GPU, inference and training actors; its bus handlers; its placement side), gpu-state.ts restores and saves
// its control state, actuation.ts sends its training commands; workloads.ts is the workloads file (what runs on each GPU); fleet-placement.ts is the
// host's side of the fleet's placement commands. The NVIDIA backend has its own face, host/nvidia/index.ts, so
// that a simulated host never loads it. What other folders may import.
export * from './host.ts';
export * from './workloads.ts';
export * from './fleet-placement.ts';
