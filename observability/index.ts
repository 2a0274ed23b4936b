export * from './tracing.ts';
export * from './setup.ts';
export * from './spans.ts';
export * from './metrics.ts';
export * from './gpu-telemetry.ts';
export * from './trace-file.ts';
export * from './explain.ts';
export * from './report.ts';
