export * from './messages.ts';
export * from './subjects.ts';
export * from './registry.ts';
export * from './workloads-nvidia.ts';
export * from './kv-values.ts';
