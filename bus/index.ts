export * from './auth/index.ts';
export * from './bus.ts';
export * from './codec.ts';
export * from './errors.ts';
export * from './server.ts';
export * from './events-stream.ts';
export * from './kv-state.ts';
