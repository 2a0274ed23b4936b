// bench/: the benchmarks. What other folders may import: the fleet bench behind `gpucolo bench fleet`.
// The scripts beside it (soak.ts, sim-fleet.ts, fleet-scale.ts, control-trace.ts, control-step.ts) run directly and export nothing;
// the control bench behind `gpucolo bench control` has its own face, bench/control/index.ts.
export * from './fleet-bench.ts';
export * from './latency-summary.ts';
