import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus } from '../../../bus/index.ts';
import { subjects, type FleetLeaderEvent, type FleetPlanEvent, type GpuStatusEvent } from '../../../schemas/index.ts';
import { FOUR_LIGHT_GPUS } from '../../faults/helpers.ts';
import { useNats } from '../../support/nats.ts';
import { until } from '../../support/wait.ts';

const BIN = join(import.meta.dirname, '..', '..', '..', 'bin', 'gpucolo.mjs');
const children: ChildProcess[] = [];
// Registered first, so it runs before the server stops.
after(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });
const server = useNats();

function cli(args: string[], name: string, log: string[]): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NATS_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => { log.push(`[${name}] ${d.toString()}`); });
  children.push(child);
  return child;
}
const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));

test('fleet - two fleet processes: one leads, packs a light host and frees GPUs; killing it hands the lead over; a burst claims GPUs back in the same trace', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gpucolo-fleet-'));
  const workloads = join(dir, 'workloads.json');
  const traceFile = join(dir, 'trace.jsonl');
  writeFileSync(traceFile, '');
  writeFileSync(workloads, JSON.stringify(FOUR_LIGHT_GPUS));
  const bus = await Bus.connect({ url: server.url, name: 'fleet-test', host: 'observer' });
  const leaders: Array<FleetLeaderEvent & { at: number }> = [];
  const plans: FleetPlanEvent[] = [];
  const freed: string[] = [];
  const claimed: string[] = [];
  const statuses = new Map<string, GpuStatusEvent>();
  bus.subscribe<'fleet.leader'>(subjects.fleetLeader(), ({ message }) => { leaders.push({ ...message, at: Date.now() }); });
  bus.subscribe<'fleet.plan'>(subjects.fleetPlan(), ({ message }) => { plans.push(message); });
  bus.subscribe<'gpu.freed'>(subjects.gpuFreed('*', '*'), ({ message }) => { freed.push(message.gpu); });
  bus.subscribe<'gpu.claimed'>(subjects.gpuClaimed('*', '*'), ({ message }) => { claimed.push(message.gpu); });
  bus.subscribe<'gpu.status'>(subjects.gpuStatus('fh', '*'), ({ message }) => { statuses.set(message.gpu, message); });
  await bus.nc.flush();
  const log: string[] = [];
  const speed = '20';
  const host = cli(['host', '--host-id', 'fh', '--backend', 'sim:4', '--workloads', workloads, '--speed', speed, '--trace-file', traceFile], 'host', log);
  const fleets = new Map<string, ChildProcess>();
  for (const id of ['fa', 'fb']) {
    fleets.set(id, cli(['fleet', '--fleet-id', id, '--speed', speed, '--min-dwell', '5', '--lease-ttl', '3', '--trace-file', traceFile], id, log));
  }
  const inUse = () => [...statuses.values()].filter((s) => s.services.length || s.trainings.length).length;
  const why = () => `${JSON.stringify({ leaders, plans: plans.length, freed, inUse: inUse() })}\n${log.join('').slice(-3000)}`;
  try {
    await until(() => leaders.some((l) => l.state === 'leading'), 20_000, () => `a leader; ${why()}`);
    // Four light GPUs, one training job: the services pack together and at least two GPUs come free.
    await until(() => freed.length >= 2 && inUse() <= 2, 60_000, () => `two GPUs freed; ${why()}`);
    assert.equal(leaders.filter((l) => l.state === 'leading').length, 1, 'exactly one process led');
    // Every service still runs, exactly once (statuses of the GPUs a move touched catch up within a second).
    const ids = () => [...statuses.values()].flatMap((s) => s.services.map((x) => x.serviceId)).sort().join(',');
    await until(() => ids() === 'svc-0,svc-1,svc-2,svc-3', 10_000, () => `every service exactly once, got ${ids()}`);

    // Kill the leader hard: the standby takes the lease once it has not moved for the ttl.
    const first = leaders.find((l) => l.state === 'leading')!;
    const standbyId = first.fleetId === 'fa' ? 'fb' : 'fa';
    const killedAt = Date.now();
    fleets.get(first.fleetId)!.kill('SIGKILL');
    await until(() => leaders.some((l) => l.fleetId === standbyId && l.state === 'leading'), 15_000, () => `the standby to lead; ${why()}`);
    const handoverMs = leaders.find((l) => l.fleetId === standbyId && l.state === 'leading')!.at - killedAt;
    assert.ok(handoverMs < 5000, `leadership moved in ${handoverMs} ms`);
    t.diagnostic(`leadership handover after SIGKILL: ${handoverMs} ms`);

    // A burst: every service at 4x. The new leader relieves the packed GPUs by claiming freed ones back.
    const plansBefore = plans.length;
    for (const s of statuses.values()) {
      for (const svc of s.services) {
        await bus.request<'inference.command'>(subjects.inferenceCommand('fh', s.gpu, svc.serviceId), { type: 'inference.command', action: 'scale-rate', scale: 4 });
      }
    }
    await until(() => claimed.length >= 1 && plans.slice(plansBefore).some((p) => p.moves.some((m) => m.reason === 'relief')), 30_000, () => `a relief plan; ${why()}`);
    await until(() => inUse() >= 3, 30_000, () => `GPUs back in use; ${why()}`);
  } finally {
    for (const c of [host, ...fleets.values()]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all([host, ...fleets.values()].map(exited));
    await bus.close();
  }
  // One trace from the fleet process's plan span to the host's handling of the placement commands.
  const spans = readFileSync(traceFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { traceId: string; name: string; service: string; instance?: string });
  const planTraces = new Set(spans.filter((s) => s.name === 'gpucolo.fleet.plan').map((s) => s.traceId));
  assert.ok(planTraces.size > 0, 'plan spans were written');
  const handled = spans.filter((s) => s.service === 'gpucolo-host' && s.instance === 'fh' && s.name === 'process colo.v1.{host}.{gpu}.placement' && planTraces.has(s.traceId));
  assert.ok(handled.length > 0, 'the host handled placement commands inside a plan\'s trace');
});
