// bench/control/: the control bench (scenarios, the simulated closed loop, oracles, scoring, the matrix and its
// tables and charts). What other folders may import.
export * from './scenarios.ts';
export * from './simulate.ts';
export * from './metrics.ts';
export * from './oracle.ts';
export * from './cell.ts';
export * from './loads.ts';
export * from './matrix.ts';
export * from './table.ts';
export * from './chart.ts';
