import { scaledClock } from '../actors/index.ts';
import { Bus } from '../bus/index.ts';
import { startFleet, type RunningFleet } from '../runners/fleet/index.ts';
import { setMessagingServer, setupTelemetry, shutdownTelemetry, startHealthServer, type HealthServer } from '../observability/index.ts';
import { assertId } from '../schemas/index.ts';
import { UsageError, numberFlag } from './errors.ts';
import { healthPortFlag, natsReadiness } from './health-flags.ts';

export interface FleetFlags {
  fleetId?: string;
  speed: string;
  planPeriod: string;
  leaseTtl: string;
  minDwell?: string;
  packUtil?: string;
  unpackUtil?: string;
  duration?: string;
  json?: boolean;
  traceFile?: string;
  /** `--health-port PORT|HOST:PORT`: serve /healthz and /readyz. */
  healthPort?: string;
}

/** `gpucolo fleet`: one fleet process; it leads while it holds the KV lease, else stands by. */
export async function fleetCommand(f: FleetFlags): Promise<void> {
  const fleetId = f.fleetId ?? `fleet-${process.pid}`;
  try {
    assertId('fleet', fleetId);
  } catch (err) {
    throw new UsageError(`--fleet-id: ${(err as Error).message}`);
  }
  const speed = numberFlag('--speed', f.speed, { min: 0.01, max: 1000 });
  const planPeriodS = numberFlag('--plan-period', f.planPeriod, { min: 0.05, max: 3600 });
  const leaseTtlS = numberFlag('--lease-ttl', f.leaseTtl, { min: 0.3, max: 600 });
  const durationS = f.duration !== undefined ? numberFlag('--duration', f.duration, { min: 0 }) : undefined;
  const planner: Record<string, number> = {};
  if (f.minDwell !== undefined) planner.minDwellMs = numberFlag('--min-dwell', f.minDwell, { min: 0 }) * 1000;
  if (f.packUtil !== undefined) planner.packUtil = numberFlag('--pack-util', f.packUtil, { min: 0.01, max: 0.99 });
  if (f.unpackUtil !== undefined) planner.unpackUtil = numberFlag('--unpack-util', f.unpackUtil, { min: 0.01, max: 0.99 });
  if ((planner.packUtil ?? 0.5) >= (planner.unpackUtil ?? 0.72)) {
    throw new UsageError('--pack-util must be below --unpack-util (the gap between them is the hysteresis)');
  }
  const healthAt = f.healthPort !== undefined ? healthPortFlag(f.healthPort) : undefined;
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  let connected: Bus | undefined;
  let running: RunningFleet | undefined;
  let health: HealthServer | undefined;
  if (healthAt) {
    // Ready as a leader or as a standby: either way it holds its part of the lease protocol.
    health = await startHealthServer({
      ...healthAt,
      checks: {
        nats: () => (connected ? natsReadiness(connected) : 'connecting to NATS'),
        actors: () => (!running ? 'starting' : running.actor.getSnapshot().status !== 'active' ? 'fleet actor not running' : undefined),
      },
    });
    log(`fleet ${fleetId}: health: http://${health.host}:${health.port}/healthz, /readyz`);
  }
  try {
    setupTelemetry('gpucolo-fleet', { log, serviceInstanceId: fleetId, ...(f.traceFile ? { traceFile: f.traceFile } : {}) });
  } catch (err) {
    await health?.close();
    throw new Error(`--trace-file: ${(err as Error).message}`, { cause: err });
  }
  const bus = await Bus.connect({ name: `gpucolo-fleet-${fleetId}`, host: 'fleet' }).catch(async (err: unknown) => {
    await health?.close();
    await shutdownTelemetry();
    throw err;
  });
  connected = bus;
  setMessagingServer(bus.nc.getServer());
  bus.onReconnect(() => setMessagingServer(bus.nc.getServer()));
  // The plans this process makes while it leads are recorded as metrics by the fleet actor itself (recordPlan).
  bus.onError = (err, where) => log(`bus: ${where}: ${(err as Error)?.message ?? err}`);
  log(`fleet ${fleetId}: bus ${bus.url}${bus.embedded ? ' (embedded)' : ''}, plan every ${planPeriodS} s at ${speed}x, lease ttl ${leaseTtlS} s`);
  const fleet = running = await startFleet({
    fleetId, bus, clock: scaledClock(speed), log, planPeriodMs: planPeriodS * 1000, leaseTtlMs: leaseTtlS * 1000, planner,
  });

  // One stop, whichever signal asks first; a later signal waits for that stop (it neither ends the process
  // half way through nor starts a second one).
  let stopped: Promise<void> | undefined;
  const stop = (why: string) => (stopped ??= stopOnce(why));
  const stopOnce = async (why: string) => {
    health?.stopping();
    log(`fleet ${fleetId}: stopping (${why})`);
    await fleet.stop();
    if (f.json) process.stdout.write(`${JSON.stringify({ ...fleet.stats(), bus: bus.stats })}\n`);
    await bus.close();
    await health?.close();
    await shutdownTelemetry();
  };
  await new Promise<void>((resolve) => {
    process.on('SIGINT', () => void stop('SIGINT').then(resolve));
    process.on('SIGTERM', () => void stop('SIGTERM').then(resolve));
    if (durationS !== undefined) setTimeout(() => void stop('duration reached').then(resolve), (durationS * 1000) / speed);
  });
  process.exit(process.exitCode ?? 0);
}
