// host/nvidia/: the host runtime's NVIDIA backend: the nvidia workloads file, matching it to the machine's GPUs,
// claiming them (MPS, leases, the pause guard) and building a device per GPU for startHost's makeDevice seam.
// A folder of its own so that it loads only for --backend nvidia (`gpucolo host`, `gpucolo calibrate`).
export * from './nvidia-backend.ts';
