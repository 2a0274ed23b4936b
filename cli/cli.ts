import { Command, CommanderError, Option } from 'commander';
import { POLICY_NAMES } from '../control/index.ts';
import { applyBusOptions, withBusOptions } from './bus-options.ts';
import { UsageError } from './errors.ts';

// Commands load lazily: `--help` and `schema` never pay for the simulator or the bus.
const lazy = (load: () => Promise<(f: any) => unknown>) => async (f: any) => { await (await load())(f); };
const hostCommand = lazy(async () => (await import('./host-command.ts')).hostCommand);
const demoCommand = lazy(async () => (await import('./demo.ts')).demoCommand);
const fleetCommand = lazy(async () => (await import('./fleet-command.ts')).fleetCommand);
const eventsCommand = lazy(async () => (await import('./events-command.ts')).eventsCommand);
const schemaCommand = lazy(async () => (await import('./schema-command.ts')).schemaCommand);
const gpusCommand = lazy(async () => (await import('./gpus-command.ts')).gpusCommand);
const explainCommand = lazy(async () => (await import('./explain-command.ts')).explainCommand);
const reportCommand = lazy(async () => (await import('./report-command.ts')).reportCommand);
const benchControlCommand = lazy(async () => (await import('./bench-command.ts')).benchControlCommand);
const benchFleetCommand = lazy(async () => (await import('./bench-fleet-command.ts')).benchFleetCommand);
const simFleetCommand = lazy(async () => (await import('./sim-command.ts')).simFleetCommand);
const calibrateCommand = lazy(async () => (await import('./calibrate-command.ts')).calibrateCommand);

/** The bench's common warm-up (bench/control/metrics.ts DEFAULT_WARMUP_S), here so --help loads no simulator. */
const DEFAULT_WARMUP_S_TEXT = 30;

/** Builds the `gpucolo` command tree. */
export function program(): Command {
  const p = new Command('gpucolo')
    .description('Co-locate latency-critical inference with training on the same GPUs, inference SLO guaranteed.\nReads NATS_URL (default: a private nats-server on loopback) and OTEL_* from the environment.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // Connection flags (--nats-url, --creds, --tls-*, ...) become NATS_* variables: every connection uses them.
    .hook('preAction', (_root, action) => applyBusOptions(action.opts()));

  withBusOptions(p.command('host'))
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
    .option('--health-port <[host:]port>', 'serve GET /healthz (alive) and /readyz (connected to NATS, GPU actors running) on this port (0: a free one, printed)')
    .action(hostCommand);

  withBusOptions(p.command('fleet'))
    .description('run a fleet actor: packs inference onto the fewest GPUs within their SLOs, frees whole GPUs, claims them back in a burst; one process leads (NATS KV lease), the others stand by')
    .option('--fleet-id <id>', 'this fleet process\'s id (letters, digits, _ and -; default fleet-<pid>)')
    .option('--speed <x>', 'the hosts\' simulated-time speed: plan periods and dwell times are in their time', '1')
    .option('--plan-period <s>', 'seconds between planning rounds', '1')
    .option('--lease-ttl <s>', 'leader lease time-to-live in wall seconds: a dead leader is replaced within about this', '3')
    .option('--min-dwell <s>', 'a GPU or workload moved less than this long ago is not consolidated again (default 30)')
    .option('--pack-util <u>', 'consolidation fills a GPU up to this effective utilisation (default 0.5)')
    .option('--unpack-util <u>', 'a GPU above this effective utilisation is relieved at once (default 0.72)')
    .option('--duration <s>', 'stop after this many (simulated) seconds (default: run until SIGINT/SIGTERM)')
    .option('--json', 'print a JSON summary line on stop')
    .option('--trace-file <file>', 'append every span to FILE as JSON lines')
    .option('--health-port <[host:]port>', 'serve GET /healthz (alive) and /readyz (connected to NATS, fleet actor running, leading or standing by) on this port (0: a free one, printed)')
    .action(fleetCommand);

  withBusOptions(p.command('demo'))
    .description('a whole cluster on this machine: embedded bus, host runners as processes, an inference burst, a live table')
    .option('--hosts <n>', 'host runner processes', '2')
    .option('--gpus <n>', 'simulated GPUs per host', '2')
    .option('--duration <s>', 'simulated seconds to run', '120')
    .option('--speed <x>', 'simulated time runs this many times faster than the wall', '10')
    .option('--burst <x>', 'request-rate multiplier during the burst (from 40% to 65% of the run, ramped in 5 steps over 5% of it)', '1.5')
    .option('--seed <n>', 'random seed', '1')
    .addOption(new Option('--policy <name>', 'control policy').choices([...POLICY_NAMES]))
    .option('--workloads <file>', 'JSON workloads file for every host')
    .option('--json', 'print tables on stderr and, as the last line of stdout, one JSON summary')
    .option('--trace-file <file>', 'write the spans of the demo and of every host runner to FILE (JSON lines, one file)')
    .option('--fleets <n>', 'fleet processes to run (one leads through the KV lease, the others stand by)', '1')
    .option('--no-fleet', 'run no fleet process: every workload stays where it started')
    .action(demoCommand);

  withBusOptions(p.command('events'))
    .description('print the events on the bus as they come (status, decisions, safety, rejected messages, hosts)')
    .option('--subject <pattern>', 'NATS subject pattern to follow', 'colo.v1.evt.>')
    .option('--count <n>', 'stop after n events')
    .option('--duration <s>', 'stop after s seconds')
    .option('--replay', 'print the events stored in the JetStream stream COLO_EVENTS, oldest first, then exit')
    .option('--json', 'one JSON object per line')
    .action(eventsCommand);

  const bench = p.command('bench').description('benchmarks: control quality of every policy on the same simulated GPU (control); fleet scale and the control round trip over NATS (fleet)');
  bench.command('control')
    .description('run control policies side by side on one simulated GPU through a load (or a matrix of loads x plants x seeds); print a table, write an SVG chart')
    .option('--scenario <name>', 'paper-burst | rate-2x | diurnal (required unless --matrix)')
    .option('--policy <list>', `all, or a comma-separated list of ${['no-colocation', 'simple', 'conservative', 'gslice', 'gslice-tuned', 'gpucolo-paper', 'gpucolo-paper-p99', 'gpucolo-paper-p99-tuned', 'oracle-static', 'oracle-dynamic', 'gpucolo'].join(', ')}`, 'all')
    .option('--profile <name|file>', 'simulated GPU profile: a built-in name or a JSON profile file (default: the scenario\'s); with --matrix a comma-separated list (default: every built-in)')
    .option('--load <file>', 'CSV with header t_s,rate_rps: Poisson arrivals following it (rates held between rows) instead of the scenario\'s load')
    .option('--mean-rps <r>', 'rescale the load curve to this mean request rate (default: the scenario\'s)')
    .option('--seed <n>', 'random seed (every policy sees the same arrivals)', '1')
    .option('--seeds <n>', 'run seeds 1..n and report the median and worst of each metric (with --matrix: seeds per cell, default 1)')
    .option('--matrix [loads]', 'run every load x every profile of the plant family (the built-ins but the measured ones; or --profile LIST) x seeds in parallel and print one table; loads: a comma-separated list of load names, CSV files or folders (default: the three scenarios, ../shared/data/loads, the GenAI qps cycle, flat 30/60/85% and MMPP 2x/4x/10x)')
    .option('--full-length', 'with --matrix: load curve files at their own length, as --scenario rate-2x --load FILE runs them (a day-long curve is a day), instead of compressed into 20 minutes')
    .option('--workers <n>', 'worker threads for --matrix (default: the CPU count)')
    .option('--warmup <s>', 'seconds at the start that are scored for no policy (latency and training alike)', String(DEFAULT_WARMUP_S_TEXT))
    .option('--out <dir>', 'directory for the chart control-<scenario>.svg; none = no chart', '.')
    .option('--json', 'tables on stderr; last stdout line one JSON object (the scenario, "profile", "policies": {NAME: {...}}; or the matrix)')
    .action(benchControlCommand);
  bench.command('fleet')
    .description('one fleet process against N simulated GPUs over a loopback nats-server (its CPU, memory and plan time), then the control round trip over NATS (window -> GPU actor decision -> training command acknowledged) beside the same three hops on a bare NATS client')
    .option('--gpus <n>', 'simulated GPUs, each reporting a gpu.status once a second (1-100000)', '10000')
    .option('--seconds <s>', 'seconds the fleet process is measured, once it leads and its 10 s warm-up and two planning rounds are over (1-3600)', '30')
    .option('--round-trips <n>', 'round trips measured, and as many bare NATS ones, timed in alternating blocks of 100 (10-100000; three times as many, at most 3000, run first unmeasured)', '1000')
    .option('--json', 'table on stderr; last stdout line {"scale": {...}, "roundTrip": {"p50Ms", "p99Ms", ...}, "natsFloor": {"p50Ms", "p99Ms", ...}, "p99OverFloor", "gc": {"pauses", "meanMs", "maxMs"}}')
    .action(benchFleetCommand);

  const sim = p.command('sim').description('the fleet trace simulation: how many GPUs co-location saves');
  sim.command('fleet')
    .description('replay a composite of real traces (57 days by default) on a simulated fleet under each placement and control policy; print GPUs used, SLO violations and training JCT')
    .option('--days <n>', 'simulated days (1-365)', '57')
    .option('--policy <name>', 'all, or one of no-colocation, separate-5-1, gslice, gpucolo-paper, gpucolo, gpucolo-no-moves', 'all')
    .option('--slot-order <order>', 'which switched-off GPU a new workload powers on, the same for every policy: fastest-first or trace', 'fastest-first')
    .option('--move-startup-s <s>', 'start-up of a moved replica, held on both GPUs meanwhile (0-600 s)', '60')
    .option('--no-matched', "skip the baselines' matched-violation sweeps")
    .option('--workers <n>', 'worker threads, 1 or 2', '2')
    .option('--data <dir>', 'folder with the derived trace files (default: the vendored data/fleet; see data/README.md)')
    .option('--seed <n>', 'random seed of the workload construction', '1')
    .option('--json', 'table on stderr; last stdout line {"days", "slotOrder", "policies": {NAME: {...}}, "matched", "savingsVsNoColocation", "savingsVsGslice", "savingsVsGsliceMatched"}')
    .option('--report <file>', 'write an HTML chart of GPUs used per day per policy')
    .option('--peak-window-h <h>', 'gpucolo\'s planner packs each service by its highest load over this many past hours (plus the next 2 h of the day before, as claim-back)', '1')
    .action(simFleetCommand);

  p.command('calibrate')
    .description('measure a GPU (inference alone against batch, next to training over MPS shares x sleep duties, training against share, restart time, noise), fit a gpu/model profile, print every measured point against the fitted one')
    .option('--backend <kind>', 'nvidia (the GPU and workloads of --workloads) or sim:1 (a simulated GPU of --profile, on simulated time)')
    .option('--workloads <file>', 'nvidia: YAML or JSON as for host --backend nvidia; its first GPU entry, first service (a closed loop printing {"latencyMs": ...}; {batch} in its argv takes the batch size) and first training job. sim:1: a JSON workloads file (its profile and first service\'s batch)')
    .option('--profile <name|file>', 'sim:1: the simulated GPU to measure (a built-in name or a profile JSON file)')
    .option('--out <file>', 'where to write the fitted profile (JSON, the schema of gpu/model/profiles)')
    .option('--name <name>', 'the fitted profile\'s name (default calibrated-<gpu name>)')
    .option('--base <name|file>', 'profile whose values stand for what calibrate does not measure (time-slicing, inference\'s own cap, sleep-change cost)', 'rtx3090-resnet50-wrn101')
    .option('--quick', 'a smaller plan: 3 batch sizes, 3 shares x 2 duties, under 5 minutes of GPU time (default plan: under 30)')
    .option('--plan <file>', 'JSON object overriding plan fields (batches, batch, shares, duties, dutyPeriodMs, aloneWindowMs, noiseWindowMs, colocWindowMs, iterWindowMs, settleMs, pollMs, restartTimeoutMs, budgetMs)')
    .option('--batch <n>', 'batch of the noise window and of the co-located grid (default 8)')
    .option('--seed <n>', 'sim:1: random seed of the simulated GPU', '1')
    .option('--state-dir <dir>', 'nvidia: folder for the MPS pipe, leases, progress and checkpoints (default $XDG_RUNTIME_DIR/gpucolo/calibrate)')
    .option('--json', 'tables on stderr; last stdout line one JSON object (parameters, points with measured, fitted and errorPct, deviceMs)')
    .action(calibrateCommand);

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
    .option('--json', 'print {"gpus": [{index, uuid, name, memoryTotalMiB, memoryUsedMiB, utilizationPct, managed, reason}]} (every GPU; reason: why not managed, else null) as the last stdout line')
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
    // A usage error, or an error of the operator's input that says how to exit (a workloads file: 2).
    if (err instanceof UsageError || (err instanceof Error && (err as { exitCode?: unknown }).exitCode === 2)) {
      process.stderr.write(`gpucolo: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`gpucolo: ${(err as Error)?.message ?? err}\n`);
    process.exitCode = 1;
  }
}
