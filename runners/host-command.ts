import { Bus, EVENTS_STREAM, ensureEventsStream } from '../bus/index.ts';
import { POLICY_NAMES, type PolicyName } from '../control/types.ts';
import { setupTelemetry, shutdownTelemetry } from '../observability/setup.ts';
import { assertId } from '../schemas/index.ts';
import { scaledClock } from './clock.ts';
import { UsageError, numberFlag } from './errors.ts';
import { startHost } from './host.ts';
import { DEFAULT_WORKLOADS, loadWorkloads } from './workloads.ts';

export interface HostFlags {
  hostId: string;
  backend: string;
  workloads?: string;
  policy?: string;
  speed: string;
  seed: string;
  duration?: string;
  json?: boolean;
}

/** Parses `--backend sim:N`. */
export function parseBackend(raw: string): { kind: 'sim'; gpus: number } {
  const m = /^sim:(\d+)$/.exec(raw);
  if (!m) throw new UsageError(`--backend must be sim:N (N simulated GPUs), got ${JSON.stringify(raw)}; the nvidia backend is not available in this build`);
  const gpus = numberFlag('--backend sim:N', m[1]!, { min: 1, max: 4096, integer: true });
  return { kind: 'sim', gpus };
}

/** `gpucolo host`: one host runner until SIGINT/SIGTERM (or --duration), then a clean stop. */
export async function hostCommand(f: HostFlags): Promise<void> {
  try {
    assertId('host', f.hostId);
  } catch (err) {
    throw new UsageError(`--host-id: ${(err as Error).message}`);
  }
  const backend = parseBackend(f.backend);
  const speed = numberFlag('--speed', f.speed, { min: 0.01, max: 1000 });
  const seed = numberFlag('--seed', f.seed, { integer: true });
  const durationS = f.duration !== undefined ? numberFlag('--duration', f.duration, { min: 0 }) : undefined;
  if (f.policy !== undefined && !(POLICY_NAMES as readonly string[]).includes(f.policy)) {
    throw new UsageError(`--policy must be one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(f.policy)}`);
  }
  const workloads = f.workloads ? loadWorkloads(f.workloads) : DEFAULT_WORKLOADS;
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

  setupTelemetry(`gpucolo-host-${f.hostId}`);
  const bus = await Bus.connect({ name: `gpucolo-host-${f.hostId}`, host: f.hostId });
  bus.onError = (err, where) => log(`bus: ${where}: ${(err as Error)?.message ?? err}`);
  log(`host ${f.hostId}: bus ${bus.url}${bus.embedded ? ' (embedded)' : ''}, ${backend.gpus} simulated GPU(s), speed ${speed}x`);
  const stream = await ensureEventsStream(bus);
  if (!stream.ok) log(`events are not kept for replay (JetStream stream ${EVENTS_STREAM} unavailable: ${stream.reason})`);
  const clock = scaledClock(speed);
  const host = await startHost({
    hostId: f.hostId, gpus: backend.gpus, workloads, clock, bus, seed, log,
    ...(f.policy ? { policy: f.policy as PolicyName } : {}),
  });

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`host ${f.hostId}: stopping (${why})`);
    await host.stop();
    if (f.json) {
      const s = host.gpuActors.map((a) => a.getSnapshot().context);
      process.stdout.write(`${JSON.stringify({ host: f.hostId, gpus: s.map((c) => ({ id: `${f.hostId}/${c.gpu}`, policy: c.policyName, mpsChanges: c.mpsChanges, sleepChanges: c.sleepChanges })), bus: bus.stats })}\n`);
    }
    await bus.close();
    await shutdownTelemetry();
  };
  const done = new Promise<void>((resolve) => {
    process.once('SIGINT', () => void stop('SIGINT').then(resolve));
    process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
    if (durationS !== undefined) setTimeout(() => void stop('duration reached').then(resolve), (durationS * 1000) / speed);
  });
  await done;
}
