// cli/: the gpucolo CLI. cli.ts builds the command tree and loads each command (*-command.ts, demo.ts) lazily;
// bus-options.ts and health-flags.ts are flags several commands share; errors.ts is the usage error (exit 2).
// What other folders may import: the CLI's entry (bin/, deploy/gpu-host, bench/fleet-scale.ts) and the usage
// error that the host runtime throws for a bad workloads file. Only cli.ts and errors.ts load here, so the
// commands stay lazy.
export { main, program } from './cli.ts';
export { UsageError, numberFlag } from './errors.ts';
