// gpu/: what the actors need from a GPU, real or simulated (the GpuDevice interface and its records). Its
// implementations have faces of their own: gpu/model/index.ts (simulated), gpu/nvidia/index.ts (real), and
// gpu/calibrate/index.ts measures either.
export type * from './types.ts';
