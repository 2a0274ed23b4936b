/**
 * Fleet scale: one `gpucolo fleet` process (a child, measured from /proc) against N simulated GPUs that
 * report a gpu.status once a second (spread evenly) and answer placement commands, all over a loopback
 * nats-server; then a control round trip on the same bus: an inference window published -> the GPU
 * actor's decision (actors/gpu.ts, gpucolo policy) -> the training command acknowledged.
 *
 *   node --import tsx bench/fleet-scale.ts [--gpus 10000] [--seconds 30] [--round-trips 1000] [--json]
 *
 * Targets (issue 4): a planning round under 1 s, the fleet process under half a core, round trip p99 < 5 ms.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { createActor } from 'xstate';
import { gpuMachine } from '../actors/gpu.ts';
import { Bus, startLocalNatsServer } from '../bus/index.ts';
import { nearestRank } from '../control/index.ts';
import { SCHEMA_VERSION, subjects, type GpuStatusEvent } from '../schemas/index.ts';

const { values: args } = parseArgs({
  options: {
    gpus: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    'round-trips': { type: 'string', default: '1000' },
    json: { type: 'boolean', default: false },
  },
});
const GPUS = Number(args.gpus);
const SECONDS = Number(args.seconds);
const ROUND_TRIPS = Number(args['round-trips']);
if (!(GPUS >= 1 && SECONDS >= 5 && ROUND_TRIPS >= 10)) {
  process.stderr.write('usage: bench/fleet-scale.ts [--gpus N>=1] [--seconds S>=5] [--round-trips R>=10] [--json]\n');
  process.exit(2);
}
const BIN = join(import.meta.dirname, '..', 'bin', 'gpucolo.mjs');
const PER_HOST = 100;
const TICKS_PER_S = 100;

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

async function scale(url: string) {
  const bus = await Bus.connect({ url, name: 'bench-gpus', host: 'bench' });
  const gpus = fleet(GPUS);
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
  await bus.nc.flush();
  const child = spawn(process.execPath, [BIN, 'fleet', '--fleet-id', 'bench', '--json', '--plan-period', '1', '--lease-ttl', '3'], {
    env: { ...process.env, NATS_URL: url }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', () => {});
  // Every GPU once a second, in TICKS_PER_S slices.
  let published = 0;
  let slice = 0;
  const perTick = Math.ceil(GPUS / TICKS_PER_S);
  const t0 = performance.now();
  const pump = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * TICKS_PER_S);
    for (; slice < due; slice++) {
      const start = (slice % TICKS_PER_S) * perTick;
      for (let i = start; i < Math.min(GPUS, start + perTick); i++) {
        const g = gpus[i]!;
        bus.publish(subjects.gpuStatus(g.host, g.gpu), status(g));
        published++;
      }
    }
  }, 1000 / TICKS_PER_S);
  // Measure after a warm-up (the fleet's view fills and its first plans run).
  const warmupS = Math.min(10, SECONDS / 3);
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  const cpu0 = cpuSeconds(child.pid!);
  const pub0 = published;
  const cmd0 = commands;
  const w0 = performance.now();
  let rssMax = 0;
  const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, rssMiB(child.pid!)); }, 1000);
  await new Promise((r) => setTimeout(r, (SECONDS - warmupS) * 1000));
  const wallS = (performance.now() - w0) / 1000;
  const cores = (cpuSeconds(child.pid!) - cpu0) / wallS;
  clearInterval(rssTimer);
  clearInterval(pump);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await bus.close();
  const stats = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { planMsMean?: number; planMsMax?: number; plannedRounds?: number; movesDone?: number; gpusKnown?: number; bus?: { received: number } };
  return {
    gpus: GPUS, statusPerS: (published - pub0) / wallS, commandsPerS: (commands - cmd0) / wallS,
    fleetCores: cores, fleetRssMiB: rssMax, planMsMean: stats.planMsMean ?? NaN, planMsMax: stats.planMsMax ?? NaN,
    plannedRounds: stats.plannedRounds ?? 0, movesDone: stats.movesDone ?? 0, gpusKnown: stats.gpusKnown ?? 0,
  };
}

/** Window published -> GPU actor decides (gpucolo policy) -> training command acknowledged, all over NATS. */
async function roundTrip(url: string) {
  const bus = await Bus.connect({ url, name: 'bench-rtt', host: 'rt' });
  const samples: number[] = [];
  let sentAt = 0;
  let acked: () => void = () => {};
  bus.serve<'training.command'>(subjects.trainingCommand('rt', 'gpu0', 'job'), () => ({ ok: true }));
  const gpu = createActor(gpuMachine.provide({
    actions: {
      actuate: (_a, { tier, old, knobs }) => {
        if (tier === 'start' || (old.pacing.mode === knobs.pacing.mode && JSON.stringify(old.pacing) === JSON.stringify(knobs.pacing))) return;
        // The decision runs on receipt of the window just sent: its send time is the round trip's start.
        const startedAt = sentAt;
        void bus.request<'training.command'>(subjects.trainingCommand('rt', 'gpu0', 'job'), { type: 'training.command', action: 'set-pacing', pacing: knobs.pacing })
          .then(() => { samples.push(performance.now() - startedAt); acked(); });
      },
      publishStatus: () => {}, publishSafety: () => {}, releaseTraining: () => {}, readClock: () => {},
    },
  }), { input: { host: 'rt', gpu: 'gpu0', policy: 'gpucolo', statusPeriodMs: 1e9 } });
  bus.subscribe<'inference.window'>(subjects.inferenceWindow('rt', 'gpu0', '*'), ({ message }) => {
    const { v: _v, type: _t, host: _h, gpu: _g, serviceId, ...report } = message;
    gpu.send({ type: 'WINDOW', serviceId, report });
  });
  await bus.nc.flush();
  gpu.start();
  gpu.send({ type: 'PROGRESS', jobId: 'job', report: { seq: 1, tMs: 0, windowMs: 200, iterations: 1, itersPerSec: 2, state: 'running', mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 50 } } });
  let tMs = 0;
  for (let i = 0; samples.length < ROUND_TRIPS && i < ROUND_TRIPS * 20; i++) {
    tMs += 200;
    // Blocks over and under the SLO, so most inner periods move the sleep duty.
    const p99Ms = Math.floor(i / 6) % 2 === 0 ? 40 : 5;
    const before = samples.length;
    const got = new Promise<void>((r) => { acked = r; });
    sentAt = performance.now();
    bus.publish(subjects.inferenceWindow('rt', 'gpu0', 'svc'), {
      v: SCHEMA_VERSION, type: 'inference.window', host: 'rt', gpu: 'gpu0', serviceId: 'svc', seq: i + 1, tMs, windowMs: 200, sloMs: 25,
      count: 40, meanMs: p99Ms / 2, p50Ms: p99Ms / 2, p95Ms: p99Ms * 0.9, p99Ms, maxMs: p99Ms, rateRps: 200, sloWindows: 0, sloWindowsMet: 0, runP99Ms: p99Ms,
    });
    await Promise.race([got, new Promise((r) => setTimeout(r, 15))]);
    if (samples.length === before) continue; // this window moved no knob
  }
  gpu.stop();
  await bus.close();
  return latencySummary(samples);
}

/** Sample count, p50, p99 and max of latency samples (ms). */
function latencySummary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples: samples.length, p50Ms: nearestRank(sorted, 50), p99Ms: nearestRank(sorted, 99), maxMs: sorted.at(-1) ?? NaN };
}

/**
 * The floor under the round trip on this machine: the same three NATS hops (window, command, reply) with a
 * bare client and 300-byte payloads, no decoding, no validation, no actor; same pacing as roundTrip.
 */
async function natsFloor(url: string) {
  const nc = await connect({ servers: url, name: 'bench-floor' });
  const payload = new Uint8Array(300);
  nc.subscribe('floor.window', { callback: () => nc.publish('floor.command', payload) });
  nc.subscribe('floor.command', { callback: () => nc.publish('floor.reply', payload) });
  let done: () => void = () => {};
  nc.subscribe('floor.reply', { callback: () => done() });
  await nc.flush();
  const samples: number[] = [];
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const got = new Promise<void>((r) => { done = r; });
    const t0 = performance.now();
    nc.publish('floor.window', payload);
    await got;
    samples.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 1));
  }
  await nc.close();
  return latencySummary(samples);
}

const server = await startLocalNatsServer();
try {
  process.stderr.write(`fleet scale: ${GPUS} GPUs for ${SECONDS} s ...\n`);
  const s = await scale(server.url);
  process.stderr.write(`round trips: ${ROUND_TRIPS} ...\n`);
  const r = await roundTrip(server.url);
  const f = await natsFloor(server.url);
  const rows = [
    ['measure', 'value', 'target'],
    ['simulated GPUs (status once a second)', String(s.gpus), ''],
    ['GPUs in the fleet\'s view at the end', String(s.gpusKnown), ''],
    ['gpu.status messages per second', s.statusPerS.toFixed(0), ''],
    ['placement commands per second', s.commandsPerS.toFixed(1), ''],
    ['plan time per round, mean / max (ms)', `${s.planMsMean.toFixed(1)} / ${s.planMsMax.toFixed(1)}`, '< 1000'],
    ['planning rounds / moves done', `${s.plannedRounds} / ${s.movesDone}`, ''],
    ['fleet process CPU (cores)', s.fleetCores.toFixed(3), '< 0.5'],
    ['fleet process RSS max (MiB)', s.fleetRssMiB.toFixed(0), ''],
    ['control round trip p50 / p99 / max (ms)', `${r.p50Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} / ${r.maxMs.toFixed(2)}`, 'p99 < 5'],
    ['round trips measured', String(r.samples), ''],
    ['bare NATS, same 3 hops p50 / p99 / max (ms)', `${f.p50Ms.toFixed(2)} / ${f.p99Ms.toFixed(2)} / ${f.maxMs.toFixed(2)}`, '(floor)'],
    ['round trip p99 / bare NATS p99', (r.p99Ms / f.p99Ms).toFixed(2), ''],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const table = rows.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
  if (args.json) {
    process.stderr.write(`${table}\n`);
    process.stdout.write(`${JSON.stringify({ scale: s, roundTrip: r, natsFloor: f })}\n`);
  } else {
    process.stdout.write(`${table}\n`);
  }
} finally {
  await server.stop();
}
