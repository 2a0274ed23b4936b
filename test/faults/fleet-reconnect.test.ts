import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus } from '../../bus/index.ts';
import { subjects, type FleetLeaderEvent, type FleetPlanEvent, type GpuStatusEvent } from '../../schemas/index.ts';
import { startNats } from '../support/nats.ts';
import { sleep, until } from '../support/wait.ts';
import { cleanEnv, FOUR_LIGHT_GPUS, startCli } from './helpers.ts';

test('faults - nats-server killed and restarted under a fleet: the fleet keeps its lease, reconnects and still plans (a burst after the restart is relieved)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-fleet-restart-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const workloads = join(dir, 'workloads.json');
  writeFileSync(workloads, JSON.stringify(FOUR_LIGHT_GPUS));
  // Restarted on the same port and JetStream store.
  const server = await startNats();
  const env = cleanEnv({ NATS_URL: server.url });
  const speed = '20';
  const host = startCli(['host', '--host-id', 'rf', '--backend', 'sim:4', '--workloads', workloads, '--speed', speed], env);
  const fleet = startCli(['fleet', '--fleet-id', 'rfleet', '--speed', speed, '--min-dwell', '5', '--lease-ttl', '3'], env);
  const bus = await Bus.connect({ url: server.url, name: 'fleet-restart-observer', host: 'observer' });
  const leaders: Array<FleetLeaderEvent & { at: number }> = [];
  const plans: Array<FleetPlanEvent & { at: number }> = [];
  const freed: number[] = [];
  const claimed: number[] = [];
  const statuses = new Map<string, GpuStatusEvent>();
  bus.subscribe<'fleet.leader'>(subjects.fleetLeader(), ({ message }) => { leaders.push({ ...message, at: Date.now() }); });
  bus.subscribe<'fleet.plan'>(subjects.fleetPlan(), ({ message }) => { plans.push({ ...message, at: Date.now() }); });
  bus.subscribe<'gpu.freed'>(subjects.gpuFreed('*', '*'), () => { freed.push(Date.now()); });
  bus.subscribe<'gpu.claimed'>(subjects.gpuClaimed('*', '*'), () => { claimed.push(Date.now()); });
  bus.subscribe<'gpu.status'>(subjects.gpuStatus('rf', '*'), ({ message }) => { statuses.set(message.gpu, message); });
  await bus.nc.flush();
  const inUse = () => [...statuses.values()].filter((s) => s.services.length || s.trainings.length).length;
  const why = () => `${JSON.stringify({ leaders: leaders.map((l) => l.state), plans: plans.length, freed: freed.length, claimed: claimed.length, inUse: inUse() })}\n${fleet.stderr().slice(-1500)}\n${host.stderr().slice(-1500)}`;
  try {
    await until(() => leaders.some((l) => l.state === 'leading'), 20_000, () => `a leader; ${why()}`);
    await until(() => freed.length >= 2 && inUse() <= 2, 60_000, () => `two GPUs freed; ${why()}`);

    await server.kill();
    const killedAt = Date.now();
    await sleep(1500);
    await server.restart();
    const restartedAt = Date.now();
    await until(() => /bus reconnected/.test(host.stderr()), 15_000, () => `the host to reconnect; ${why()}`);
    await until(() => [...statuses.values()].every((s) => s.unixMs > restartedAt), 15_000, () => `statuses after the restart; ${why()}`);

    // A burst after the restart: only a fleet that reconnected (statuses in, commands out) relieves it.
    // A service the fleet moves meanwhile gets its burst where it runs now: the statuses read when the burst
    // began can place it on the GPU it left, where nobody answers (no responders: the command was not applied).
    const serviceIds = [...new Set([...statuses.values()].flatMap((s) => s.services.map((x) => x.serviceId)))];
    for (const id of serviceIds) {
      const burstBy = Date.now() + 20_000;
      for (;;) {
        const at = [...statuses.values()].find((s) => s.services.some((x) => x.serviceId === id));
        try {
          if (!at) throw new Error(`no status lists ${id}: no responders yet`);
          await bus.requestWithRetry<'inference.command'>(subjects.inferenceCommand('rf', at.gpu, id), { type: 'inference.command', action: 'scale-rate', scale: 4 }, { deadlineMs: 3_000 });
          break;
        } catch (err) {
          if (!/no responders/.test((err as Error).message) || Date.now() > burstBy) throw err;
          await sleep(250);
        }
      }
    }
    await until(() => plans.some((p) => p.at > restartedAt && p.moves.some((m) => m.reason === 'relief')) && claimed.some((c) => c > restartedAt), 30_000, () => `a relief plan after the restart; ${why()}`);
    await until(() => inUse() >= 3, 30_000, () => `GPUs back in use; ${why()}`);
    // The same process led throughout: the outage (shorter than the lease) did not hand the lead over.
    assert.deepEqual([...new Set(leaders.map((l) => `${l.fleetId}:${l.state}`))], ['rfleet:leading']);
    // Every service still runs, exactly once (statuses of the GPUs a move touched catch up within a second).
    const ids = () => [...statuses.values()].flatMap((s) => s.services.map((x) => x.serviceId)).sort().join(',');
    await until(() => ids() === 'svc-0,svc-1,svc-2,svc-3', 10_000, () => `every service exactly once, got ${ids()}`);
    t.diagnostic(`outage ${restartedAt - killedAt} ms; first relief plan ${Math.min(...plans.filter((p) => p.at > restartedAt && p.moves.some((m) => m.reason === 'relief')).map((p) => p.at)) - restartedAt} ms after the restart`);
  } finally {
    for (const c of [host, fleet]) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
    const codes = await Promise.all([host.exited, fleet.exited]);
    await bus.close();
    await server.stop();
    assert.deepEqual(codes, [0, 0], `${host.stderr().slice(-1000)}\n${fleet.stderr().slice(-1000)}`);
  }
});
