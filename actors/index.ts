// actors/: the xstate machines of a host (GPU, inference, training, host) and of the fleet. What other folders may import.
export * from './gpu.ts';
export * from './inference.ts';
export * from './training.ts';
export * from './host.ts';
export * from './fleet.ts';
export * from './clock.ts';
