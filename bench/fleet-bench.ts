/**
 * Fleet scale (`gpucolo bench fleet`): one `gpucolo fleet` process (a child, measured from /proc) against N
 * simulated GPUs that report a gpu.status once a second (spread evenly) and answer placement commands, all
 * over a loopback nats-server; then a control round trip on the same bus: an inference window published ->
 * the GPU actor's decision (actors/gpu.ts, gpucolo policy) -> the training command acknowledged; and the
 * same three NATS hops with a bare client, the floor under the round trip, timed in alternating blocks with it.
 *
 * Targets: a planning round under 1 s, the fleet process under half a core, round trip p99 within 3x of the
 * bare NATS p99 measured in the same run.
 *
 * Run it as `gpucolo bench fleet` (cli/bench-fleet-command.ts), or `node --import tsx bench/fleet-scale.ts
 * [flags]`, the same command.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { createActor } from 'xstate';
import { FLEET_WARMUP_MS, gpuMachine, inferenceReportOf } from '../actors/index.ts';
import { Bus, startLocalNatsServer } from '../bus/index.ts';
import { samePacing } from '../control/index.ts';
import { gcPauses, gcSummary, latencySummary, type GcSummary, type LatencySummary } from './latency-summary.ts';
import { SCHEMA_VERSION, subjects, type GpuStatusEvent, type InferenceWindow } from '../schemas/index.ts';

// import.meta.url, not dirname: the compiled build (bin/build.mjs) points it at this source file.
const BIN = fileURLToPath(new URL('../bin/gpucolo.mjs', import.meta.url));
const PER_HOST = 100;
const TICKS_PER_S = 100;
/** The fleet child's planning period (s) in this bench. */
const PLAN_PERIOD_S = 1;
/**
 * Windows in a row that move no knob before the round trip starts the policy afresh (a controller that
 * settled; the gpucolo model takes a few hundred windows to identify the plant, moving the duty seldom meanwhile).
 */
const SETTLED_AFTER = 1000;
/**
 * Unmeasured round trips before the timed ones: three times as many as are timed, at most WARMUP_MAX. What is
 * timed is a runtime that has run a while. In one process, successive runs of 1000 round trips had V8 optimise
 * 631, 164 and 40 functions, and the p99 fell with them: background compilation competing with nats-server for
 * the cores, not our code. WARMUP_MAX round trips are about 13,000 windows, which a host runner's GPU actors (one
 * process, one JIT) see within minutes of its start: a host of 16 services sends 80 windows a second.
 */
const WARMUP_MAX = 3000;

export interface FleetBenchOptions {
  gpus: number;
  /** Seconds the fleet process is measured, once it leads and its warm-up is over. */
  seconds: number;
  /** Round trips measured, after three times as many unmeasured ones (at most WARMUP_MAX); the floor the same. */
  roundTrips: number;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
}

export interface ScaleResult {
  gpus: number;
  /** Seconds measured (the fleet leading and past its warm-up). */
  measuredS: number;
  statusPerS: number;
  commandsPerS: number;
  fleetCores: number;
  fleetRssMiB: number;
  /** From here on, over the fleet process's whole run (its summary line on exit); null: it never planned. */
  planMsMean: number | null;
  planMsMax: number | null;
  plannedRounds: number;
  movesDone: number;
  gpusKnown: number;
}

export interface FleetBenchResult {
  scale: ScaleResult;
  /** Window published -> GPU actor decision -> training command acknowledged (a decision that moved a knob). */
  roundTrip: LatencySummary & { windows: number; policyResets: number };
  /** The same three hops on a bare NATS client: no codec, no validation, no actor. */
  natsFloor: LatencySummary;
  /** roundTrip.p99Ms / natsFloor.p99Ms. */
  p99OverFloor: number;
  /**
   * Collections while timing. Each pauses whatever sample is in flight: with a few of them over 1000 samples, where
   * they fall moves the p99 (the 10th-worst sample) from one run to the next; they are not all of its tail.
   */
  gc: GcSummary;
}

interface SimGpu { host: string; gpu: string; services: Array<{ id: string; rateRps: number; sloMs: number; batch: number }>; trainings: string[] }

/** N GPUs, 100 per host: a quarter with a training job; inference loads that leave room to consolidate. */
function fleet(n: number): SimGpu[] {
  return Array.from({ length: n }, (_, i) => ({
    host: `bh${Math.floor(i / PER_HOST)}`, gpu: `gpu${i % PER_HOST}`,
    services: [{ id: `s${i}`, rateRps: 20 + (i % 7) * 10, sloMs: 25, batch: 2 }],
    trainings: i % 4 === 0 ? [`t${i}`] : [],
  }));
}

function status(g: SimGpu): GpuStatusEvent {
  return {
    v: SCHEMA_VERSION, type: 'gpu.status', host: g.host, gpu: g.gpu, tMs: performance.now(), unixMs: Date.now(), policy: 'gpucolo', state: 'controlling',
    services: g.services.map((s) => {
      const sMs = 1.55 + 0.5 * s.batch;
      return { serviceId: s.id, sloMs: s.sloMs, p99Ms: sMs * 3, meanMs: sMs * 1.2, rateRps: s.rateRps, runP99Ms: sMs * 3, sloWindows: 10, sloWindowsMet: 10 };
    }),
    trainings: g.trainings.map((t) => ({ jobId: t, itersPerSec: 1, iterations: 10, state: 'running' as const })),
    mpsSharePct: 50, pacing: { mode: 'duty', duty: 0.2, periodMs: 50 }, trainingRunning: g.trainings.length > 0, mpsChanges: 0, sleepChanges: 0,
  };
}

/** utime + stime of a process, seconds (from /proc). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `p`, or `fallback` after `ms`; the timer is cleared either way (none is left to hold the process). */
async function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((r) => { timer = setTimeout(() => r(fallback), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function scale(url: string, o: FleetBenchOptions): Promise<ScaleResult> {
  const log = o.log ?? (() => {});
  const bus = await Bus.connect({ url, name: 'bench-gpus', host: 'bench' });
  const gpus = fleet(o.gpus);
  const byId = new Map(gpus.map((g) => [`${g.host}/${g.gpu}`, g]));
  const specs = new Map(gpus.flatMap((g) => g.services.map((s) => [s.id, s] as const)));
  let commands = 0;
  // The host side of placement: it only moves the workload in the simulated GPU's state and acknowledges.
  bus.serve<'placement.command'>('colo.v1.*.*.placement', ({ subject, message: m }) => {
    commands++;
    const [, , host, gpu] = subject.split('.');
    const g = byId.get(`${host}/${gpu}`);
    if (!g) return { ok: false, error: 'unknown GPU' };
    if (m.action === 'describe') return { ok: true, state: { services: g.services.map((s) => ({ ...s })), trainings: g.trainings.map((id) => ({ id, iterations: 10 })) } };
    if (m.action === 'start-service' && m.serviceId) { if (!g.services.some((s) => s.id === m.serviceId)) g.services.push(specs.get(m.serviceId)!); }
    if (m.action === 'drain-service') g.services = g.services.filter((s) => s.id !== m.serviceId);
    if (m.action === 'start-training' && m.jobId && !g.trainings.includes(m.jobId)) g.trainings.push(m.jobId);
    if (m.action === 'checkpoint-training') { g.trainings = g.trainings.filter((t) => t !== m.jobId); return { ok: true, state: { checkpoint: { jobId: m.jobId, iterations: 10 } } }; }
    return { ok: true };
  });
  let leading: () => void = () => {};
  const led = new Promise<void>((r) => { leading = r; });
  bus.subscribe<'fleet.leader'>(subjects.fleetLeader(), ({ message }) => { if (message.fleetId === 'bench' && message.state === 'leading') leading(); });
  await bus.nc.flush();
  const child = spawn(process.execPath, [BIN, 'fleet', '--fleet-id', 'bench', '--json', '--plan-period', String(PLAN_PERIOD_S), '--lease-ttl', '3'], {
    env: { ...process.env, NATS_URL: url }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // Every GPU once a second, in TICKS_PER_S slices.
  let published = 0;
  let slice = 0;
  const perTick = Math.ceil(o.gpus / TICKS_PER_S);
  const t0 = performance.now();
  const pump = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * TICKS_PER_S);
    for (; slice < due; slice++) {
      const start = (slice % TICKS_PER_S) * perTick;
      for (let i = start; i < Math.min(o.gpus, start + perTick); i++) {
        const g = gpus[i]!;
        bus.publish(subjects.gpuStatus(g.host, g.gpu), status(g));
        published++;
      }
    }
  }, 1000 / TICKS_PER_S);
  try {
    // Measure a fleet that leads and plans: its lead, then its warm-up, then two planning rounds.
    const lead = await within(Promise.race([led.then(() => true), exited.then(() => false)]), 30_000, false);
    if (!lead) throw new Error(`the fleet process did not take the lead within 30 s: ${err.slice(-1000)}`);
    const warmupS = FLEET_WARMUP_MS / 1000 + 2 * PLAN_PERIOD_S;
    log(`fleet leads; its ${FLEET_WARMUP_MS / 1000} s warm-up and two planning rounds (${warmupS} s), then ${o.seconds} s measured ...`);
    await sleep(warmupS * 1000);
    const cpu0 = cpuSeconds(child.pid!);
    const pub0 = published;
    const cmd0 = commands;
    const w0 = performance.now();
    let rssMax = rssMiB(child.pid!);
    const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, rssMiB(child.pid!)); }, 1000);
    await sleep(o.seconds * 1000);
    const measuredS = (performance.now() - w0) / 1000;
    const cores = (cpuSeconds(child.pid!) - cpu0) / measuredS;
    clearInterval(rssTimer);
    const statusPerS = (published - pub0) / measuredS;
    const commandsPerS = (commands - cmd0) / measuredS;
    clearInterval(pump);
    child.kill('SIGTERM');
    await exited;
    const stats = JSON.parse(out.trim().split('\n').at(-1) || '{}') as { planMsMean?: number; planMsMax?: number; plannedRounds?: number; movesDone?: number; gpusKnown?: number };
    return {
      gpus: o.gpus, measuredS, statusPerS, commandsPerS, fleetCores: cores, fleetRssMiB: rssMax,
      planMsMean: stats.planMsMean ?? null, planMsMax: stats.planMsMax ?? null,
      plannedRounds: stats.plannedRounds ?? 0, movesDone: stats.movesDone ?? 0, gpusKnown: stats.gpusKnown ?? 0,
    };
  } finally {
    clearInterval(pump);
    if (child.exitCode === null) { child.kill('SIGKILL'); await exited; }
    await bus.close();
  }
}

/** A window of service `svc` on rt/gpu0 whose p99 is `p99Ms` (its p95 0.9 of it). */
function windowOf(seq: number, tMs: number, p99Ms: number): InferenceWindow {
  return {
    v: SCHEMA_VERSION, type: 'inference.window', host: 'rt', gpu: 'gpu0', serviceId: 'svc', seq, tMs, windowMs: 200, sloMs: 25,
    count: 40, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, sloWindows: 0, sloWindowsMet: 0, runP99Ms: p99Ms,
  };
}

/**
 * A rig that times round trips in blocks: `block(n, timed)` runs n of them; `samples` holds the timed ones (ms),
 * `starts` when each began (performance.now()).
 */
interface Rig {
  block(n: number, timed: boolean): Promise<void>;
  readonly samples: number[];
  readonly starts: number[];
  close(): Promise<void>;
}

/**
 * Window published -> GPU actor decides (gpucolo policy) -> training command acknowledged, all over NATS, as a
 * host runner wires it (runners/host/host.ts). The MPS share is fixed (no outer-tier restart to wait out): what is
 * timed is the inner tier's control loop. Windows alternate over and under the SLO so that most inner periods
 * move the sleep duty; a window that moves nothing is known at once (the actor decides synchronously on
 * receipt) and the next one follows. A controller that settles (no move for SETTLED_AFTER windows) is
 * started afresh (SET_POLICY, untimed).
 */
async function roundTripRig(url: string): Promise<Rig & { windows: number; resets: number }> {
  const bus = await Bus.connect({ url, name: 'bench-rtt', host: 'rt' });
  const samples: number[] = [];
  const starts: number[] = [];
  let sentAt = 0;
  let timing = false;
  let moved = false;
  let settle: () => void = () => {};
  const command = subjects.trainingCommand('rt', 'gpu0', 'job');
  bus.serve<'training.command'>(command, () => ({ ok: true }));
  const gpu = createActor(gpuMachine.provide({
    actions: {
      actuate: (_a, { tier, old, knobs }) => {
        if (tier === 'start' || samePacing(old.pacing, knobs.pacing)) return;
        // The decision runs on receipt of the window just sent: its send time is the round trip's start.
        const startedAt = sentAt;
        const measured = timing;
        moved = true;
        void bus.request<'training.command'>(command, { type: 'training.command', action: 'set-pacing', pacing: knobs.pacing })
          .then(() => { if (measured) { samples.push(performance.now() - startedAt); starts.push(startedAt); } settle(); }, () => settle());
      },
      publishStatus: () => {}, publishSafety: () => {}, releaseTraining: () => {}, readClock: () => {},
    },
  }), { input: { host: 'rt', gpu: 'gpu0', policy: 'gpucolo', statusPeriodMs: 1e9, mpsShareFixed: true } });
  bus.subscribe<'inference.window'>(subjects.inferenceWindow('rt', 'gpu0', '*'), ({ message }) => {
    moved = false;
    gpu.send({ type: 'WINDOW', serviceId: message.serviceId, report: inferenceReportOf(message) });
    if (!moved) settle(); // no knob moved: no command to wait for
  });
  await bus.nc.flush();
  gpu.start();
  gpu.send({ type: 'PROGRESS', jobId: 'job', report: { seq: 1, tMs: 0, windowMs: 200, iterations: 1, itersPerSec: 2, state: 'running', mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 } } });
  let tMs = 0;
  let i = 0;
  let quiet = 0;
  const rig = {
    samples, starts, windows: 0, resets: 0,
    async block(n: number, timed: boolean) {
      let done = 0;
      // One watchdog for the block, not a timer and a race per window (the floor's loop has neither, and what
      // runs after the publish is timed): a window whose command gets no reply within about 2 s is let go.
      const watchdog = setInterval(() => { if (performance.now() - sentAt > 2000) settle(); }, 500);
      try {
        for (const limit = i + n * 50; done < n && i < limit; i++) {
          tMs += 200;
          // One window in four far over the SLO: the duty goes to its cap, and the model brings it down after.
          const p99Ms = i % 4 === 0 ? 40 : 5;
          const got = new Promise<void>((r) => { settle = r; });
          const before = samples.length;
          timing = timed;
          moved = false;
          sentAt = performance.now();
          bus.publish(subjects.inferenceWindow('rt', 'gpu0', 'svc'), windowOf(i + 1, tMs, p99Ms));
          await got;
          rig.windows++;
          if (moved) {
            done++;
            quiet = 0;
            if (timed && samples.length === before) throw new Error('round trip: a training command got no reply');
          } else if (++quiet >= SETTLED_AFTER) {
            gpu.send({ type: 'SET_POLICY', policy: 'gpucolo' });
            rig.resets++;
            quiet = 0;
          }
          // The same pause as the floor's between messages: the event loop idles between windows, as it does live.
          await sleep(1);
        }
      } finally {
        clearInterval(watchdog);
      }
    },
    async close() {
      gpu.stop();
      await bus.close();
    },
  };
  return rig;
}

/**
 * The floor under the round trip on this machine: the same three NATS hops (window, command, reply) with a
 * bare client and 300-byte payloads, no decoding, no validation, no actor; the same pause between messages.
 */
async function natsFloorRig(url: string): Promise<Rig> {
  const nc = await connect({ servers: url, name: 'bench-floor' });
  const payload = new Uint8Array(300);
  nc.subscribe('floor.window', { callback: () => nc.publish('floor.command', payload) });
  nc.subscribe('floor.command', { callback: () => nc.publish('floor.reply', payload) });
  let done: () => void = () => {};
  nc.subscribe('floor.reply', { callback: () => done() });
  await nc.flush();
  const samples: number[] = [];
  const starts: number[] = [];
  return {
    samples, starts,
    async block(n: number, timed: boolean) {
      for (let i = 0; i < n; i++) {
        const got = new Promise<void>((r) => { done = r; });
        const t0 = performance.now();
        nc.publish('floor.window', payload);
        await got;
        if (timed) { samples.push(performance.now() - t0); starts.push(t0); }
        await sleep(1);
      }
    },
    async close() { await nc.close(); },
  };
}

/** Round trips and floor samples are timed in alternating blocks of this many, so both see the same machine. */
const BLOCK = 100;

/**
 * The round trip and its floor, `count` timed samples each after `warmup` untimed ones each, measured in
 * alternating blocks (a round-trip block, then a floor block) so that a busy spell of the machine falls on both.
 */
export async function roundTripAndFloor(url: string, count: number, warmup: number) {
  const rt = await roundTripRig(url);
  let floor: Rig | undefined;
  const gcs = gcPauses();
  try {
    floor = await natsFloorRig(url);
    await rt.block(warmup, false);
    await floor.block(warmup, false);
    gcs.start();
    for (let left = count; left > 0; left -= BLOCK) {
      await rt.block(Math.min(BLOCK, left), true);
      await floor.block(Math.min(BLOCK, left), true);
    }
    const timed = await gcs.stop();
    return {
      roundTrip: { ...latencySummary(rt.samples, rt.starts, timed), windows: rt.windows, policyResets: rt.resets },
      natsFloor: latencySummary(floor.samples, floor.starts, timed),
      gc: gcSummary(timed),
    };
  } finally {
    gcs.close();
    await rt.close();
    await floor?.close();
  }
}

/** Runs the whole bench on a private loopback nats-server. */
export async function runFleetBench(o: FleetBenchOptions): Promise<FleetBenchResult> {
  const log = o.log ?? (() => {});
  const server = await startLocalNatsServer();
  try {
    log(`fleet scale: ${o.gpus} GPUs ...`);
    const s = await scale(server.url, o);
    const warmup = Math.min(WARMUP_MAX, 3 * o.roundTrips);
    log(`round trips and the bare NATS floor: ${o.roundTrips} each (after ${warmup} unmeasured), in alternating blocks of ${BLOCK} ...`);
    const { roundTrip: r, natsFloor: f, gc } = await roundTripAndFloor(server.url, o.roundTrips, warmup);
    return { scale: s, roundTrip: r, natsFloor: f, p99OverFloor: r.p99Ms / f.p99Ms, gc };
  } finally {
    await server.stop();
  }
}

const fx = (x: number | null, d: number) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));

/** The result as a table. */
export function fleetBenchTable(b: FleetBenchResult): string {
  const { scale: s, roundTrip: r, natsFloor: f } = b;
  const rows = [
    ['measure', 'value', 'target'],
    ['simulated GPUs (status once a second)', String(s.gpus), ''],
    ['GPUs in the fleet\'s view at the end', String(s.gpusKnown), ''],
    ['seconds measured (fleet leading, past its warm-up)', fx(s.measuredS, 1), ''],
    ['gpu.status messages per second', fx(s.statusPerS, 0), ''],
    ['placement commands per second', fx(s.commandsPerS, 1), ''],
    ['plan time per round, mean / max (ms)', `${fx(s.planMsMean, 1)} / ${fx(s.planMsMax, 1)}`, '< 1000'],
    ['planning rounds / moves done', `${s.plannedRounds} / ${s.movesDone}`, ''],
    ['fleet process CPU (cores)', fx(s.fleetCores, 3), '< 0.5'],
    ['fleet process RSS max (MiB)', fx(s.fleetRssMiB, 0), ''],
    ['control round trip p50 / p99 / max (ms)', `${fx(r.p50Ms, 2)} / ${fx(r.p99Ms, 2)} / ${fx(r.maxMs, 2)}`, ''],
    ['round trips measured / windows sent / policy resets', `${r.samples} / ${r.windows} / ${r.policyResets}`, ''],
    ['bare NATS, same 3 hops p50 / p99 / max (ms)', `${fx(f.p50Ms, 2)} / ${fx(f.p99Ms, 2)} / ${fx(f.maxMs, 2)}`, '(floor)'],
    ['round trip p99 / bare NATS p99', fx(b.p99OverFloor, 2), '<= 3'],
    ['GC pauses while timing: count / mean / max (ms)', `${b.gc.pauses} / ${fx(b.gc.meanMs, 2)} / ${fx(b.gc.maxMs, 2)}`, ''],
    ['samples a GC pause fell in: round trip / floor', `${r.inGc} / ${f.inGc}`, ''],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
