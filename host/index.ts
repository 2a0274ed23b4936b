// host/: the host runtime. host.ts wires one GPU actor per GPU (with its inference and training actors) to the
// bus and to the devices; workloads.ts is the workloads file (what runs on each GPU); fleet-placement.ts is the
// host's side of the fleet's placement commands. The NVIDIA backend has its own face, host/nvidia/index.ts, so
// that a simulated host never loads it. What other folders may import.
export * from './host.ts';
export * from './workloads.ts';
export * from './fleet-placement.ts';
