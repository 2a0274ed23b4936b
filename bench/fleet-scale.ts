/**
 * `node --import tsx bench/fleet-scale.ts [--gpus N] [--seconds S] [--round-trips R] [--json]`: the same as
 * `gpucolo bench fleet` (the bench is bench/fleet-bench.ts, the command cli/bench-fleet-command.ts).
 */
import { main } from '../cli/index.ts';

await main([process.argv[0]!, 'gpucolo', 'bench', 'fleet', ...process.argv.slice(2)]);
