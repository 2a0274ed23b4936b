export * from './tracing.ts';
export * from './setup.ts';
