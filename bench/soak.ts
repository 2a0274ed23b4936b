/**
 * Soak: a simulated cluster (host runner processes on a private nats-server) under operator commands,
 * with faults on a schedule: a runner SIGKILLed and restarted, the nats-server killed and restarted.
 * Prints one table: SLO attainment, commands sent / lost / answered twice, and per fault the recovery
 * time.
 *
 *   node --import tsx bench/soak.ts [--minutes 30] [--speed 20] [--hosts 2] [--gpus 2] [--json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { Bus, decode, freePort, startLocalNatsServer, type LocalNatsServer } from '../bus/index.ts';
import { subjects, type GpuStatusEvent } from '../schemas/index.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'gpucolo.mjs');
const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' }, speed: { type: 'string', default: '20' },
    hosts: { type: 'string', default: '2' }, gpus: { type: 'string', default: '2' }, json: { type: 'boolean', default: false },
  },
});
const simMinutes = Number(flags.minutes);
const speed = Number(flags.speed);
const hostCount = Number(flags.hosts);
const gpuCount = Number(flags.gpus);
for (const [name, v] of [['--minutes', simMinutes], ['--speed', speed], ['--hosts', hostCount], ['--gpus', gpuCount]] as const) {
  if (!(v > 0) || !Number.isFinite(v)) { process.stderr.write(`soak: ${name} must be a positive number\n`); process.exit(2); }
}
const wallMs = (simMs: number) => simMs / speed;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`${new Date().toISOString()} soak: ${line}\n`);

interface Fault { atSimMin: number; kind: 'runner-kill' | 'nats-restart'; target: string; startedAt?: number; recoveredMs?: number[] }
// Every five simulated minutes, alternating: a runner killed (restarted after 1 s), the bus killed (back after 1.5 s).
const faults: Fault[] = [];
for (let m = 5, i = 0; m < simMinutes; m += 5, i++) {
  faults.push(i % 2 === 0 ? { atSimMin: m, kind: 'runner-kill', target: `h${(i / 2) % hostCount}` } : { atSimMin: m, kind: 'nats-restart', target: 'nats' });
}

const storeDir = mkdtempSync(join(tmpdir(), 'gpucolo-soak-'));
const port = await freePort();
let server: LocalNatsServer = await startLocalNatsServer({ port, storeDir });
const url = server.url;
const hosts = Array.from({ length: hostCount }, (_, i) => `h${i}`);
const runners = new Map<string, ChildProcess>();
const runnerLogs = new Map<string, string>();
function startRunner(host: string): void {
  const child = spawn(process.execPath, [BIN, 'host', '--host-id', host, '--backend', `sim:${gpuCount}`, '--speed', String(speed), '--seed', String(hosts.indexOf(host) + 1)],
    { env: { ...process.env, NATS_URL: url }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d) => { runnerLogs.set(host, ((runnerLogs.get(host) ?? '') + d).slice(-20_000)); });
  runners.set(host, child);
}

// Statuses per GPU and incarnation: attainment adds up the 1 s windows of every incarnation.
const statuses: Array<GpuStatusEvent & { at: number }> = [];
const watcher = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
watcher.subscribe('colo.v1.evt.*.*.status', { callback: (_e, m) => { statuses.push({ ...(decode(m.data) as GpuStatusEvent), at: Date.now() }); } });
const operator = await Bus.connect({ url, name: 'soak-operator', host: 'soak' });

for (const h of hosts) startRunner(h);
const ready = Date.now();
while (new Set(statuses.map((s) => `${s.host}/${s.gpu}`)).size < hostCount * gpuCount) {
  if (Date.now() - ready > 60_000) throw new Error('runners did not report within 60 s');
  await sleep(50);
}
const t0 = Date.now();
const simNow = () => (Date.now() - t0) * speed;
log(`${hostCount} hosts x ${gpuCount} GPUs, ${simMinutes} simulated minutes at ${speed}x (${(wallMs(simMinutes * 60_000) / 1000).toFixed(0)} s), ${faults.length} faults`);

// The operator: every 10 simulated seconds, a new SLO for one GPU, retried with its key until answered.
const commands = { sent: 0, answered: 0, lost: 0, duplicateReplies: 0, maxTries: 0 };
const lastSlo = new Map<string, number>();
const inFlight: Promise<void>[] = [];
let seq = 0;
const operatorLoop = (async () => {
  while (simNow() < simMinutes * 60_000) {
    const host = hosts[seq % hostCount]!;
    const gpu = `gpu${Math.floor(seq / hostCount) % gpuCount}`;
    const sloMs = 24 + (seq % 5);
    seq++;
    commands.sent++;
    inFlight.push(operator.requestWithRetry<'gpu.command'>(subjects.gpuCommand(host, gpu), { type: 'gpu.command', action: 'set-slo', sloMs, id: `soak-${seq}` }, { deadlineMs: 20_000 })
      .then((r) => {
        if (!r.ok) { commands.lost++; return; }
        commands.answered++;
        if (r.duplicate) commands.duplicateReplies++;
        commands.maxTries = Math.max(commands.maxTries, r.attempts);
        lastSlo.set(`${host}/${gpu}`, sloMs);
      }, () => { commands.lost++; }));
    await sleep(wallMs(10_000));
  }
})();

// The faults, on simulated time.
for (const f of faults) {
  while (simNow() < f.atSimMin * 60_000) await sleep(20);
  f.startedAt = Date.now();
  if (f.kind === 'runner-kill') {
    runners.get(f.target)!.kill('SIGKILL');
    log(`t=${f.atSimMin} min: SIGKILL runner ${f.target}`);
    await sleep(1000);
    startRunner(f.target);
  } else {
    log(`t=${f.atSimMin} min: nats-server killed`);
    process.kill(server.pid, 'SIGKILL');
    await server.stop();
    await sleep(1500);
    server = await startLocalNatsServer({ port, storeDir });
  }
  // Recovered: every GPU of the hit hosts reports again, controlling.
  const hit = f.kind === 'runner-kill' ? [f.target] : hosts;
  const since = f.kind === 'runner-kill' ? f.startedAt + 1000 : f.startedAt;
  f.recoveredMs = await Promise.all(hit.flatMap((h) => Array.from({ length: gpuCount }, async (_, g) => {
    while (!statuses.some((s) => s.host === h && s.gpu === `gpu${g}` && s.at > since && s.state === 'controlling')) {
      if (Date.now() - f.startedAt! > 60_000) return Number.NaN;
      await sleep(10);
    }
    return statuses.find((s) => s.host === h && s.gpu === `gpu${g}` && s.at > since && s.state === 'controlling')!.at - f.startedAt!;
  })));
}
await operatorLoop;
await Promise.all(inFlight);
await sleep(wallMs(5000));

// Every answered SLO is the one in force at the end, across runner restarts (it lives in KV).
let sloMismatches = 0;
for (const [id, slo] of lastSlo) {
  const [h, g] = id.split('/');
  const last = statuses.filter((s) => s.host === h && s.gpu === g).at(-1);
  if (last?.services[0]?.sloMs !== slo) sloMismatches++;
}
// Attainment over all incarnations: sum the windows of each (a restarted runner counts from zero).
const perGpu = new Map<string, { windows: number; met: number; prev: number; prevMet: number }>();
for (const s of statuses) {
  const k = `${s.host}/${s.gpu}`;
  const svc = s.services[0];
  if (!svc) continue;
  const a = perGpu.get(k) ?? { windows: 0, met: 0, prev: 0, prevMet: 0 };
  if (svc.sloWindows < a.prev) { a.windows += a.prev; a.met += a.prevMet; }
  a.prev = svc.sloWindows;
  a.prevMet = svc.sloWindowsMet;
  perGpu.set(k, a);
}
const attainment = [...perGpu.values()].map((a) => (a.met + a.prevMet) / Math.max(1, a.windows + a.prev));
const held = statuses.length;

for (const child of runners.values()) child.kill('SIGTERM');
await Promise.all([...runners.values()].map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
await operator.close();
await watcher.close();
await server.stop();
rmSync(storeDir, { recursive: true, force: true });

const rows: string[][] = [['measure', 'value']];
rows.push(['simulated time', `${simMinutes} min at ${speed}x, ${hostCount} hosts x ${gpuCount} GPUs`]);
rows.push(['SLO attainment (1 s windows, min / mean over GPUs)', `${Math.min(...attainment).toFixed(4)} / ${(attainment.reduce((x, y) => x + y, 0) / attainment.length).toFixed(4)}`]);
rows.push(['operator commands sent / answered / lost', `${commands.sent} / ${commands.answered} / ${commands.lost}`]);
rows.push(['answered from the idempotency cache (resent, not re-applied)', String(commands.duplicateReplies)]);
rows.push(['most tries one command needed', String(commands.maxTries)]);
rows.push(['GPUs whose final SLO is not the last one answered', String(sloMismatches)]);
rows.push(['paused-training time after runner death', 'none in the simulated cluster (training lives in the runner); nvidia backend: README, Faults']);
for (const f of faults) {
  const ms = f.recoveredMs ?? [];
  rows.push([`t=${f.atSimMin} min ${f.kind} ${f.kind === 'runner-kill' ? f.target : ''}`.trim(), `every GPU controlling again after ${Math.max(...ms).toFixed(0)} ms wall (${(Math.max(...ms) * speed / 1000).toFixed(1)} s simulated)${f.kind === 'runner-kill' ? ', restart started after 1000 ms' : ', server down 1500 ms'}`]);
}
rows.push(['status events seen', String(held)]);
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
process.stdout.write(`${rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n')}\n`);
if (flags.json) {
  process.stdout.write(`${JSON.stringify({ simMinutes, speed, hosts: hostCount, gpus: gpuCount, attainment, commands, sloMismatches, faults: faults.map((f) => ({ atSimMin: f.atSimMin, kind: f.kind, target: f.target, recoveredMs: f.recoveredMs })) })}\n`);
}
process.exit(commands.lost === 0 && sloMismatches === 0 ? 0 : 1);
