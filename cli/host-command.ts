import { dirname, resolve } from 'node:path';
import { scaledClock } from '../actors/index.ts';
import { Bus, EVENTS_STREAM, GpuStateStore, STATE_BUCKET, ensureEventsStream } from '../bus/index.ts';
import { isPolicyName, POLICY_NAMES, type PolicyName } from '../control/index.ts';
import { DEFAULT_WORKLOADS, loadWorkloads, startHost, type RunningHost } from '../runners/host/index.ts';
import type { NvidiaBackend } from '../runners/host/nvidia/index.ts';
import { setGpuIdentity, setMessagingServer, setupTelemetry, shutdownTelemetry, startHealthServer, type HealthServer } from '../observability/index.ts';
import { assertId } from '../schemas/index.ts';
import { UsageError, numberFlag } from './errors.ts';
import { healthPortFlag, natsReadiness } from './health-flags.ts';

export interface HostFlags {
  hostId: string;
  backend: string;
  workloads?: string;
  policy?: string;
  speed: string;
  seed: string;
  duration?: string;
  json?: boolean;
  traceFile?: string;
  stateDir?: string;
  /** `--health-port PORT|HOST:PORT`: serve /healthz and /readyz. */
  healthPort?: string;
}

/** Parses `--backend sim:N` or `--backend nvidia`. */
export function parseBackend(raw: string): { kind: 'sim'; gpus: number } | { kind: 'nvidia' } {
  if (raw === 'nvidia') return { kind: 'nvidia' };
  const m = /^sim:(\d+)$/.exec(raw);
  if (!m) throw new UsageError(`--backend must be sim:N (N simulated GPUs) or nvidia (the GPUs named in --workloads), got ${JSON.stringify(raw)}`);
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
  if (f.policy !== undefined && !isPolicyName(f.policy)) {
    throw new UsageError(`--policy must be one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(f.policy)}`);
  }
  const healthAt = f.healthPort !== undefined ? healthPortFlag(f.healthPort) : undefined;
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  // Taken from the start: a signal while the runner is still starting must not kill it before it can
  // release its training jobs; it stops as soon as it is up. Every later one is taken too (the first decides):
  // a second Ctrl-C, or a SIGTERM after a SIGINT, must not end the process half way through that release.
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.on('SIGINT', () => resolve('SIGINT'));
    process.on('SIGTERM', () => resolve('SIGTERM'));
  });
  // Up before anything slow, so a probe sees a live process that is not ready yet (and why).
  let bus: Bus | undefined;
  let host: RunningHost | undefined;
  let health: HealthServer | undefined;
  if (healthAt) {
    health = await startHealthServer({
      ...healthAt,
      checks: {
        nats: () => (bus ? natsReadiness(bus) : 'connecting to NATS'),
        actors: () => {
          if (!host) return 'starting';
          const down = host.gpuActors.filter((a) => a.getSnapshot().status !== 'active').map((a) => a.getSnapshot().context.gpu);
          return down.length ? `GPU actors not running: ${down.join(', ')}` : undefined;
        },
      },
    });
    log(`host ${f.hostId}: health: http://${health.host}:${health.port}/healthz, /readyz`);
  }
  const nvidiaWorkloads = backend.kind === 'nvidia' ? await loadNvidia(f, speed, log) : undefined;
  const workloads = backend.kind === 'sim' && f.workloads ? loadWorkloads(f.workloads) : DEFAULT_WORKLOADS;

  try {
    setupTelemetry('gpucolo-host', { log, serviceInstanceId: f.hostId, ...(f.traceFile ? { traceFile: f.traceFile } : {}) });
  } catch (err) {
    await health?.close();
    throw new Error(`--trace-file: ${(err as Error).message}`, { cause: err });
  }
  bus = await Bus.connect({ name: `gpucolo-host-${f.hostId}`, host: f.hostId }).catch(async (err: unknown) => {
    await health?.close();
    await shutdownTelemetry();
    throw err;
  });
  const connected = bus;
  setMessagingServer(connected.nc.getServer());
  bus.onReconnect(() => setMessagingServer(connected.nc.getServer()));
  bus.onError = (err, where) => log(`bus: ${where}: ${(err as Error)?.message ?? err}`);
  log(`host ${f.hostId}: bus ${bus.url}${bus.embedded ? ' (embedded)' : ''}, ${backend.kind === 'sim' ? `${backend.gpus} simulated GPU(s), speed ${speed}x` : `${nvidiaWorkloads!.file.gpus.length} NVIDIA GPU(s)`}`);
  const stream = await ensureEventsStream(bus);
  if (!stream.ok) log(`events are not kept for replay (JetStream stream ${EVENTS_STREAM} unavailable: ${stream.reason})`);
  const state = await GpuStateStore.open(bus);
  if (!state.store) log(`GPU state does not survive a restart (JetStream KV ${STATE_BUCKET} unavailable: ${state.reason})`);
  const clock = scaledClock(speed);
  let nvidia: NvidiaBackend | undefined;
  const giveUp = async (err: unknown): Promise<never> => {
    await nvidia?.close();
    await connected.close();
    await health?.close();
    await shutdownTelemetry();
    throw err;
  };
  nvidia = nvidiaWorkloads ? await nvidiaWorkloads.prepare({ hostId: f.hostId, clock: clock.now, log, ...(f.stateDir ? { stateDir: f.stateDir } : {}) }).catch(giveUp) : undefined;
  // The GPU UUID on every per-GPU series (joins with DCGM exporter); the host runner names GPUs gpu0..gpuN-1.
  nvidia?.gpuList.forEach((g, i) => setGpuIdentity(f.hostId, `gpu${i}`, { uuid: g.uuid }));
  const running = host = await startHost({
    hostId: f.hostId, gpus: nvidia?.gpus ?? (backend.kind === 'sim' ? backend.gpus : 0), workloads: nvidia?.workloads ?? workloads, clock, bus, seed, log,
    ...(f.policy ? { policy: f.policy as PolicyName } : {}),
    ...(state.store ? { stateStore: state.store } : {}),
    ...(nvidia ? { makeDevice: nvidia.makeDevice, backendLabel: 'nvidia' } : {}),
  }).catch(giveUp);

  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    health?.stopping();
    log(`host ${f.hostId}: stopping (${why})`);
    await running.stop();
    await nvidia?.close();
    if (f.json) {
      const s = running.gpuActors.map((a) => a.getSnapshot().context);
      process.stdout.write(`${JSON.stringify({ host: f.hostId, gpus: s.map((c) => ({ id: `${f.hostId}/${c.gpu}`, policy: c.policyName, mpsChanges: c.mpsChanges, sleepChanges: c.sleepChanges })), bus: connected.stats })}\n`);
    }
    await connected.close();
    await health?.close();
    await shutdownTelemetry();
  };
  const done = new Promise<void>((resolve) => {
    void signalled.then((sig) => stop(sig)).then(resolve);
    if (durationS !== undefined) setTimeout(() => void stop('duration reached').then(resolve), (durationS * 1000) / speed);
  });
  await done;
  // An exporter still retrying a collector that does not answer must not keep a stopped runner alive.
  process.exit(process.exitCode ?? 0);
}

/** The nvidia backend's workloads file, read and matched to the GPUs before anything starts; `prepare` claims them. */
async function loadNvidia(f: HostFlags, speed: number, log: (line: string) => void) {
  if (!f.workloads) throw new UsageError('--backend nvidia needs --workloads FILE (YAML or JSON naming each GPU\'s inference and training commands)');
  if (speed !== 1) throw new UsageError(`--speed must be 1 with --backend nvidia (real GPUs run in real time), got ${speed}`);
  const nv = await import('../runners/host/nvidia/index.ts');
  const file = nv.loadNvidiaWorkloads(f.workloads);
  const baseDir = dirname(resolve(f.workloads));
  const chosen = await nv.matchNvidiaGpus(file, log);
  return { file, prepare: (o: { hostId: string; clock: () => number; log: (l: string) => void; stateDir?: string }) => nv.prepareNvidiaBackend({ ...o, workloads: file, chosen, baseDir }) };
}
