import { Command, CommanderError, Option } from 'commander';
import { POLICY_NAMES } from '../control/types.ts';
import { UsageError } from './errors.ts';

// Commands load lazily: `--help` and `schema` never pay for the simulator or the bus.
/* eslint-disable @typescript-eslint/no-explicit-any */
const lazy = (load: () => Promise<(f: any) => unknown>) => async (f: any) => { await (await load())(f); };
const hostCommand = lazy(async () => (await import('./host-command.ts')).hostCommand);
const demoCommand = lazy(async () => (await import('./demo.ts')).demoCommand);
const eventsCommand = lazy(async () => (await import('./events-command.ts')).eventsCommand);
const schemaCommand = lazy(async () => (await import('./schema-command.ts')).schemaCommand);
const gpusCommand = lazy(async () => (await import('./gpus-command.ts')).gpusCommand);
const explainCommand = lazy(async () => (await import('./explain-command.ts')).explainCommand);
const reportCommand = lazy(async () => (await import('./report-command.ts')).reportCommand);
const benchControlCommand = lazy(async () => (await import('./bench-command.ts')).benchControlCommand);

/** Builds the `gpucolo` command tree. */
export function program(): Command {
  const p = new Command('gpucolo')
    .description('Co-locate latency-critical inference with training on the same GPUs, inference SLO guaranteed.\nReads NATS_URL (default: a private nats-server on loopback) and OTEL_* from the environment.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  p.command('host')
    .description('run one host runner: a GPU actor per GPU plus its inference and training actors')
    .requiredOption('--host-id <id>', 'this host\'s id (letters, digits, _ and -)')
    .option('--backend <kind>', 'GPU backend: sim:N = N simulated GPUs; nvidia = the NVIDIA GPUs named in --workloads', 'sim:2')
    .option('--workloads <file>', 'JSON workloads file (default: one ResNet-50 service and one WRN-101 job per GPU); with --backend nvidia, YAML or JSON naming each GPU\'s commands')
    .option('--state-dir <dir>', 'nvidia backend: folder for MPS pipes, leases, checkpoints and the paused-process record (default $XDG_RUNTIME_DIR/gpucolo/<host-id>)')
    .addOption(new Option('--policy <name>', 'control policy').choices([...POLICY_NAMES]))
    .option('--speed <x>', 'simulated time runs this many times faster than the wall', '1')
    .option('--seed <n>', 'random seed of the simulated GPUs', '1')
    .option('--duration <s>', 'stop after this many simulated seconds (default: run until SIGINT/SIGTERM)')
    .option('--json', 'print a JSON summary line on stop')
    .option('--trace-file <file>', 'append every span to FILE as JSON lines (for explain and report)')
    .action(hostCommand);

  p.command('demo')
    .description('a whole cluster on this machine: embedded bus, host runners as processes, an inference burst, a live table')
    .option('--hosts <n>', 'host runner processes', '2')
    .option('--gpus <n>', 'simulated GPUs per host', '2')
    .option('--duration <s>', 'simulated seconds to run', '120')
    .option('--speed <x>', 'simulated time runs this many times faster than the wall', '10')
    .option('--burst <x>', 'request-rate multiplier during the burst (from 40% to 65% of the run)', '1.5')
    .option('--seed <n>', 'random seed', '1')
    .addOption(new Option('--policy <name>', 'control policy').choices([...POLICY_NAMES]))
    .option('--workloads <file>', 'JSON workloads file for every host')
    .option('--json', 'print tables on stderr and, as the last line of stdout, one JSON summary')
    .option('--trace-file <file>', 'write the spans of the demo and of every host runner to FILE (JSON lines, one file)')
    .action(demoCommand);

  p.command('events')
    .description('print the events on the bus as they come (status, decisions, safety, rejected messages, hosts)')
    .option('--subject <pattern>', 'NATS subject pattern to follow', 'colo.v1.evt.>')
    .option('--count <n>', 'stop after n events')
    .option('--duration <s>', 'stop after s seconds')
    .option('--replay', 'print the events stored in the JetStream stream COLO_EVENTS, oldest first, then exit')
    .option('--json', 'one JSON object per line')
    .action(eventsCommand);

  const bench = p.command('bench').description('benchmarks: control quality of every policy on the same simulated GPU');
  bench.command('control')
    .description('run control policies side by side on one simulated GPU through a load scenario; print a table, write an SVG chart')
    .requiredOption('--scenario <name>', 'paper-burst | rate-2x | diurnal')
    .option('--policy <name>', `all, or one of ${POLICY_NAMES.join(', ')}`, 'all')
    .option('--profile <name>', 'simulated GPU profile (default: the scenario\'s)')
    .option('--load <file>', 'CSV with header t_s,rate_rps: Poisson arrivals following it (rates held between rows) instead of the scenario\'s load')
    .option('--mean-rps <r>', 'rescale the load curve to this mean request rate (default: the scenario\'s)')
    .option('--seed <n>', 'random seed (every policy sees the same arrivals)', '1')
    .option('--out <dir>', 'directory for the chart control-<scenario>.svg; none = no chart', '.')
    .option('--json', 'table on stderr; last stdout line {"scenario", "policies": {NAME: {...}}}')
    .action(benchControlCommand);

  p.command('explain')
    .description('per GPU, a timeline of every knob change and why, from a trace file (--trace-file)')
    .argument('<file>', 'trace file (JSON lines)')
    .option('--gpu <host/gpu>', 'only this GPU, e.g. host0/gpu1')
    .option('--since <t>', 'from this time: ISO date-time (wall clock) or device time since the GPU started (40s, 2m, 1500ms)')
    .option('--until <t>', 'up to this time, same forms as --since')
    .option('--json', 'print the timeline as one JSON object (last stdout line)')
    .action((file: string, o: object) => explainCommand({ ...o, file }));

  p.command('report')
    .description('one self-contained HTML file with charts of a run, from a trace file (--trace-file)')
    .argument('<file>', 'trace file (JSON lines)')
    .requiredOption('-o, --out <file>', 'HTML file to write')
    .option('--json', 'print what was written as JSON')
    .action((file: string, o: object) => reportCommand({ ...o, file }));

  p.command('gpus')
    .description('list the NVIDIA GPUs this host runner would manage (nvidia-smi; GPUCOLO_NVIDIA_SMI names another binary)')
    .option('--nvidia-smi <path>', 'the nvidia-smi binary to run (default: GPUCOLO_NVIDIA_SMI, else nvidia-smi on PATH)')
    .option('--json', 'print {"gpus": [{index, uuid, name, memoryTotalMiB, memoryUsedMiB, utilizationPct}]} as the last stdout line')
    .action(gpusCommand);

  p.command('schema')
    .description('write the JSON Schema (2020-12) of every message and index.json (subject pattern -> schema file)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--json', 'print what was written as JSON')
    .action(schemaCommand);
  return p;
}

/** Runs the CLI; usage errors exit 2, runtime failures exit 1, each with a message saying what to fix. */
export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`gpucolo: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`gpucolo: ${(err as Error)?.message ?? err}\n`);
    process.exitCode = 1;
  }
}
