import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { context, trace } from '@opentelemetry/api';
import { Bus, NoRespondersError, ensureEventsStream } from '../bus/index.ts';
import { isPolicyName, POLICY_NAMES } from '../control/index.ts';
import { commandSpan, exporterNames, failSpan, prometheusEndpoint, setupTelemetry, shutdownTelemetry, SPAN } from '../observability/index.ts';
import { subjects, type GpuStatusEvent, type HostLifecycleEvent } from '../schemas/index.ts';
import { UsageError, numberFlag } from './errors.ts';
import { FleetTally, demoWorkloads, type DemoFleetSummary } from './fleet-demo.ts';

export interface DemoFlags {
  hosts: string;
  gpus: string;
  duration: string;
  speed: string;
  seed: string;
  policy?: string;
  workloads?: string;
  burst: string;
  json?: boolean;
  traceFile?: string;
  /** Fleet processes to start (one leads); false (`--no-fleet`) for none. */
  fleet?: boolean;
  fleets?: string;
}

/**
 * The demo's per-GPU summary line (the JSON contract of `gpucolo demo --json`). A GPU that serves nothing at
 * the end (the fleet moved its services away) has no SLO or p99 to show: null, never 0; its attainment is
 * over what it served before, null if it never served.
 */
export interface DemoGpuSummary {
  id: string;
  /** Inference services on the GPU at the end of the run. */
  servicesAtEnd: number;
  sloMs: number | null;
  p99Ms: number | null;
  attainment: number | null;
  trainingItersPerSec: number;
  mpsChanges: number;
  sleepChanges: number;
}

const BIN = fileURLToPath(new URL('../bin/gpucolo.mjs', import.meta.url));

/** Summarises a GPU's last status: the tightest service's SLO, run p99 and 1 s-window attainment. */
export function summarizeStatus(s: GpuStatusEvent): DemoGpuSummary {
  let tight = s.services[0];
  let windows = 0;
  let attainment = 1;
  for (const x of s.services) {
    if (tight && x.runP99Ms / x.sloMs > tight.runP99Ms / tight.sloMs) tight = x;
    if (x.sloWindows > 0) attainment = Math.min(attainment, x.sloWindowsMet / x.sloWindows);
    windows += x.sloWindows;
  }
  const iterations = s.trainings.reduce((a, t) => a + t.iterations, 0);
  return {
    id: `${s.host}/${s.gpu}`,
    servicesAtEnd: s.services.length,
    sloMs: tight?.sloMs ?? null,
    p99Ms: tight ? round(tight.runP99Ms, 2) : null,
    attainment: windows > 0 ? round(attainment, 4) : null,
    trainingItersPerSec: round(s.tMs > 0 ? (iterations * 1000) / s.tMs : 0, 3),
    mpsChanges: s.mpsChanges,
    sleepChanges: s.sleepChanges,
  };
}

/**
 * A GPU's summary at the end of the demo: SLO and run p99 of what it serves now, attainment pooled over
 * everything it served during the run (FleetTally), training iterations done on it.
 */
export function summarizeGpu(s: GpuStatusEvent, tally: FleetTally): DemoGpuSummary {
  const gpu = `${s.host}/${s.gpu}`;
  return {
    ...summarizeStatus(s),
    attainment: tally.servedWindows(gpu) > 0 ? round(tally.attainment(gpu), 4) : null,
    trainingItersPerSec: round(s.tMs > 0 ? (tally.iterations(gpu) * 1000) / s.tMs : 0, 3),
  };
}

function endState(g: DemoGpuSummary): string {
  if (g.servicesAtEnd > 0) return `${g.servicesAtEnd} service(s)`;
  return g.attainment === null ? 'never served' : 'services moved away';
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function table(statuses: Map<string, GpuStatusEvent>): string {
  const rows = [['gpu', 'svc p99 / SLO ms', 'attain', 'sleep', 'mps%', 'train it/s', 'state']];
  for (const s of [...statuses.values()].sort((a, b) => `${a.host}/${a.gpu}`.localeCompare(`${b.host}/${b.gpu}`))) {
    const svc = s.services.map((x) => `${x.p99Ms.toFixed(1)} / ${x.sloMs}`).join(', ');
    const att = s.services.map((x) => (x.sloWindows ? (x.sloWindowsMet / x.sloWindows).toFixed(3) : '-')).join(',');
    const sleep = s.pacing.mode === 'duty' ? `duty ${s.pacing.duty.toFixed(2)}` : `${s.pacing.sleepMs.toFixed(0)}ms/it`;
    const it = s.trainings.map((t) => t.itersPerSec.toFixed(2)).join(',');
    rows.push([`${s.host}/${s.gpu}`, svc, att, s.trainingRunning ? sleep : 'off', String(s.mpsSharePct), it, s.state]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

/**
 * `gpucolo demo`: the embedded bus, H host runners as separate processes, an inference burst driven over
 * the bus, a live table per GPU, and a summary.
 */
export async function demoCommand(f: DemoFlags): Promise<void> {
  const hosts = numberFlag('--hosts', f.hosts, { min: 1, max: 64, integer: true });
  const gpus = numberFlag('--gpus', f.gpus, { min: 1, max: 256, integer: true });
  const durationS = numberFlag('--duration', f.duration, { min: 5 });
  const speed = numberFlag('--speed', f.speed, { min: 0.1, max: 100 });
  const seed = numberFlag('--seed', f.seed, { integer: true });
  const burst = numberFlag('--burst', f.burst, { min: 0.1, max: 10 });
  const fleets = f.fleet === false ? 0 : numberFlag('--fleets', f.fleets ?? '1', { min: 0, max: 8, integer: true });
  if (f.policy !== undefined && !isPolicyName(f.policy)) {
    throw new UsageError(`--policy must be one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(f.policy)}`);
  }
  const out = f.json ? process.stderr : process.stdout;
  // One trace file for the whole demo: emptied here, then every process appends whole lines (O_APPEND).
  if (f.traceFile) {
    try {
      writeFileSync(f.traceFile, '');
    } catch (err) {
      throw new Error(`--trace-file: cannot write ${f.traceFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  // Prometheus: one port per process, from OTEL_EXPORTER_PROMETHEUS_PORT (default 9464) up: the demo, its hosts, its fleets.
  const prom = exporterNames(process.env, 'METRICS').includes('prometheus') ? prometheusEndpoint(process.env) : undefined;
  const metricsPort = (i: number) => (prom ? { OTEL_EXPORTER_PROMETHEUS_PORT: String(prom.port + i) } : {});
  setupTelemetry('gpucolo-demo', { serviceInstanceId: 'demo', env: { ...process.env, ...metricsPort(0) }, ...(f.traceFile ? { traceFile: f.traceFile } : {}) });
  const bus = await Bus.connect({ name: 'gpucolo-demo', host: 'demo' });
  out.write(`bus: ${bus.url}${bus.embedded ? ' (embedded nats-server)' : ''}; ${hosts} host(s) x ${gpus} simulated GPU(s); ${durationS} s at ${speed}x\n`);

  await ensureEventsStream(bus);
  const statuses = new Map<string, GpuStatusEvent>();
  const started = new Set<string>();
  const stopped = new Set<string>();
  let decisions = 0;
  let safety = 0;
  const tally = new FleetTally();
  bus.subscribe<'gpu.status'>(`${subjects.allEvents().slice(0, -1)}*.*.status`, ({ message }) => {
    statuses.set(`${message.host}/${message.gpu}`, message);
    tally.onStatus(message);
  });
  bus.subscribe<'fleet.plan'>(subjects.fleetPlan(), ({ message }) => { tally.onPlan(message); });
  bus.subscribe<'gpu.decision'>(`${subjects.allEvents().slice(0, -1)}*.*.decision`, () => { decisions++; });
  bus.subscribe<'gpu.safety'>(`${subjects.allEvents().slice(0, -1)}*.*.safety`, () => { safety++; });
  bus.subscribe<'host.lifecycle'>(`${subjects.allEvents().slice(0, -1)}*.lifecycle`, ({ message }: { message: HostLifecycleEvent }) => {
    if (message.state === 'started') started.add(message.host);
    if (message.state === 'stopped') stopped.add(message.host);
  });
  await bus.nc.flush();

  const children: ChildProcess[] = [];
  const hostIds = Array.from({ length: hosts }, (_, i) => `host${i}`);
  for (const [i, hostId] of hostIds.entries()) {
    const args = [BIN, 'host', '--host-id', hostId, '--backend', `sim:${gpus}`, '--speed', String(speed), '--seed', String(seed + i)];
    if (f.policy) args.push('--policy', f.policy);
    // Without --workloads: a mixed fleet with fleet-unique ids (see fleet-demo.ts), so services can move.
    args.push('--workloads', f.workloads ?? demoWorkloads(hostId, gpus));
    if (f.traceFile) args.push('--trace-file', f.traceFile);
    const child = spawn(process.execPath, args, { env: { ...process.env, NATS_URL: bus.url, ...metricsPort(1 + i) }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`[${hostId}] ${line}\n`);
    });
    children.push(child);
  }
  for (let i = 0; i < fleets; i++) {
    const fleetId = `demo-fleet${i}`;
    const args = [BIN, 'fleet', '--fleet-id', fleetId, '--speed', String(speed)];
    if (f.traceFile) args.push('--trace-file', f.traceFile);
    const child = spawn(process.execPath, args, { env: { ...process.env, NATS_URL: bus.url, ...metricsPort(1 + hosts + i) }, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`[${fleetId}] ${line}\n`);
    });
    children.push(child);
  }
  if (prom) {
    const at = (i: number) => `http://${prom.host === '0.0.0.0' ? '127.0.0.1' : prom.host}:${prom.port + i}/metrics`;
    const names = ['demo', ...hostIds, ...Array.from({ length: fleets }, (_, i) => `demo-fleet${i}`)];
    out.write(`metrics (prometheus): ${names.map((n, i) => `${n} ${at(i)}`).join(', ')}\n`);
  }
  const killAll = () => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); };
  process.once('exit', killAll);

  try {
    await waitFor(() => started.size === hosts, 60_000, () => `hosts did not start: ${hostIds.filter((h) => !started.has(h)).join(', ')}`, children);
    const t0 = performance.now();
    const simS = () => ((performance.now() - t0) / 1000) * speed;
    const sampler = setInterval(() => tally.sample(hosts * gpus), 1000 / speed);
    const burstAt = durationS * 0.4;
    const calmAt = durationS * 0.65;
    // The burst ramps (like real traffic) in RAMP_STEPS equal factors over 5% of the run, up and down.
    const rampS = durationS * 0.05;
    const step = burst ** (1 / RAMP_STEPS);
    let up = 0;
    let down = 0;
    let lastTable = 0;
    while (simS() < durationS) {
      await sleep(100);
      if (up < RAMP_STEPS && simS() >= burstAt + (up * rampS) / RAMP_STEPS) {
        if (up === 0) out.write(`t=${simS().toFixed(0)}s: inference burst: request rate rising to x${burst} on every service over ${rampS.toFixed(0)} s\n`);
        up++;
        await scaleAll(bus, statuses, step);
      } else if (up === RAMP_STEPS && down < RAMP_STEPS && simS() >= calmAt + (down * rampS) / RAMP_STEPS) {
        if (down === 0) out.write(`t=${simS().toFixed(0)}s: burst over: request rate back\n`);
        down++;
        await scaleAll(bus, statuses, 1 / step);
      }
      if (performance.now() - lastTable >= 2000) {
        lastTable = performance.now();
        out.write(`\n-- t=${simS().toFixed(0)}s --\n${table(statuses)}\n`);
      }
    }
    clearInterval(sampler);
    const finalStatuses = new Map(statuses);
    for (const c of children) c.kill('SIGTERM');
    await waitFor(() => children.every((c) => c.exitCode !== null), 15_000, () => 'hosts did not stop in time', []).catch((err) => {
      process.stderr.write(`${(err as Error).message}; killing them\n`);
      killAll();
    });
    // Attainment per GPU over every service that ran on it during the run (fleet-demo.ts says how).
    const summary = [...finalStatuses.values()].sort((a, b) => `${a.host}/${a.gpu}`.localeCompare(`${b.host}/${b.gpu}`))
      .map((s) => summarizeGpu(s, tally));
    const fleetSummary: DemoFleetSummary = tally.summary(hosts * gpus);
    out.write(`\n== summary: ${summary.length} GPUs, ${decisions} decisions, ${safety} safety events, ${bus.stats.rejected} rejected messages ==\n`);
    const rows = [['gpu', 'SLO ms', 'run p99 ms', 'attainment', 'train it/s', 'mps changes', 'sleep changes', 'at the end']];
    for (const g of summary) {
      rows.push([
        g.id, g.sloMs === null ? '-' : String(g.sloMs), g.p99Ms === null ? '-' : g.p99Ms.toFixed(2), g.attainment === null ? '-' : g.attainment.toFixed(4),
        g.trainingItersPerSec.toFixed(3), String(g.mpsChanges), String(g.sleepChanges), endState(g),
      ]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    out.write(`${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n')}\n`);
    if (fleets > 0) {
      out.write(`fleet: ${fleetSummary.gpusTotal} GPUs, freed min ${fleetSummary.gpusFreedMin} / max ${fleetSummary.gpusFreedMax} / mean ${fleetSummary.gpusFreedMean}, ${fleetSummary.moves} moves\n`);
    }
    if (f.json) process.stdout.write(`${JSON.stringify({ gpus: summary, ...(fleets > 0 ? { fleet: fleetSummary } : {}) })}\n`);
    if (summary.length !== hosts * gpus) throw new Error(`only ${summary.length} of ${hosts * gpus} GPUs reported a status`);
  } finally {
    killAll();
    await bus.close();
    await shutdownTelemetry();
  }
  // An exporter still retrying a collector that does not answer must not keep a finished demo alive.
  process.exit(process.exitCode ?? 0);
}

const RAMP_STEPS = 5;

async function scaleAll(bus: Bus, statuses: Map<string, GpuStatusEvent>, scale: number): Promise<void> {
  const sends: Promise<unknown>[] = [];
  /** Where a service runs now, by the newest statuses (the fleet may have moved it since). */
  const whereIs = (serviceId: string) => [...statuses.values()].filter((s) => s.services.some((x) => x.serviceId === serviceId)).sort((a, b) => b.unixMs - a.unixMs)[0];
  const one = async (serviceId: string, first: GpuStatusEvent) => {
    let s = first;
    const id = randomUUID(); // one command, however many tries
    for (let attempt = 1; ; attempt++) {
      const subject = subjects.inferenceCommand(s.host, s.gpu, serviceId);
      const span = commandSpan(SPAN.commandPrefix, subject, 'scale-rate', { 'gpucolo.host': s.host, 'gpucolo.gpu': s.gpu, 'gpucolo.service': serviceId, 'gpucolo.scale': scale });
      try {
        const r = await bus.request<'inference.command'>(subject, { type: 'inference.command', action: 'scale-rate', scale, id }, { ctx: trace.setSpan(context.active(), span) });
        if (!r.ok) process.stderr.write(`scale-rate on ${s.host}/${s.gpu}/${serviceId} refused: ${r.error}\n`);
        return;
      } catch (err) {
        failSpan(span, err);
        // Nobody serves it there any more: the fleet moved it between the status and the command. Look again.
        const moved = attempt < 4 && err instanceof NoRespondersError;
        if (!moved) { process.stderr.write(`scale-rate on ${s.host}/${s.gpu}/${serviceId}: ${(err as Error).message}\n`); return; }
      } finally {
        span.end();
      }
      await sleep(500);
      s = whereIs(serviceId) ?? s;
    }
  };
  for (const s of statuses.values()) for (const svc of s.services) sends.push(one(svc.serviceId, s));
  await Promise.all(sends);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond: () => boolean, timeoutMs: number, why: () => string, children: ChildProcess[]): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    const dead = children.find((c) => c.exitCode !== null);
    if (dead) throw new Error(`a host runner exited early with code ${dead.exitCode}`);
    if (Date.now() > end) throw new Error(why());
    await sleep(50);
  }
}
