import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { Bus, decode, replayEvents } from '../../bus/index.ts';
import { subjects, type GpuStatusEvent } from '../../schemas/index.ts';
import { startNats } from '../support/nats.ts';
import { sleep, until } from '../support/wait.ts';
import { cleanEnv, startCli } from './helpers.ts';

test('faults - nats-server killed and restarted: runner and clients reconnect, a command sent meanwhile is applied once, resent ones are not applied again, events are replayable', async (t) => {
  // Restarted on the same port and JetStream store.
  const server = await startNats();
  const url = server.url;
  const host = 'nr';
  const runner = startCli(['host', '--host-id', host, '--backend', 'sim:1', '--speed', '5'], cleanEnv({ NATS_URL: url }));
  const watcher = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const statuses: Array<GpuStatusEvent & { at: number }> = [];
  watcher.subscribe(subjects.gpuStatus(host, 'gpu0'), { callback: (_e, m) => { statuses.push({ ...(decode(m.data) as GpuStatusEvent), at: Date.now() }); } });
  const client = await Bus.connect({ url, name: 'operator', host: 'operator' });
  const svc = subjects.inferenceCommand(host, 'gpu0', 'resnet50');
  // scale-rate is not idempotent by itself (it multiplies): applied twice, it would show.
  const scale = (scale: number, id: string) => client.requestWithRetry<'inference.command'>(svc, { type: 'inference.command', action: 'scale-rate', scale, id }, { deadlineMs: 20_000 });
  const rateOf = (r: { state?: Record<string, unknown> }) => r.state?.rateRps as number;
  try {
    await until(() => statuses.length >= 2, 30_000, () => `the runner's status\n${runner.stderr()}`);
    const r0 = rateOf(await scale(1, 'read-0'));
    const before = await scale(2, 'k-before');
    assert.equal(rateOf(before), 2 * r0);

    await server.kill();
    const killedAt = Date.now();
    // Sent while the server is down: retried with its key until it is answered.
    const during = scale(1.5, 'k-during');
    await sleep(1500);
    await server.restart();
    const restartedAt = Date.now();
    const reply = await during;
    assert.equal(reply.ok, true, JSON.stringify(reply));
    assert.ok(reply.attempts > 1, `the command needed ${reply.attempts} tries`);
    assert.equal(rateOf(reply), 3 * r0, 'applied once');
    // Resent by a client that never saw the replies: answered again, applied no more.
    const again = await Promise.all([scale(2, 'k-before'), scale(1.5, 'k-during')]);
    assert.deepEqual(again.map((r) => r.duplicate), [true, true]);
    assert.equal(rateOf(await scale(1, 'read-1')), 3 * r0, 'each command applied exactly once');

    // The runner is back: it says so, and its statuses flow to a watcher that reconnected too.
    await until(() => /bus reconnected; knobs re-sent/.test(runner.stderr()), 10_000, () => `the runner to reconnect\n${runner.stderr()}`);
    await until(() => statuses.some((s) => s.at > restartedAt + 500), 10_000, 'statuses after the restart');
    const gapMs = Math.min(...statuses.filter((s) => s.at > killedAt).map((s) => s.at)) - killedAt;

    // The stream kept what was published before the crash, and what the runner published while the
    // server was down (held by the client and sent on reconnect) — each once.
    const stored: GpuStatusEvent[] = [];
    await replayEvents(client, ({ message }) => { if (message.type === 'gpu.status' && message.host === host) stored.push(message); });
    const outage = stored.filter((s) => s.unixMs > killedAt && s.unixMs < restartedAt);
    assert.ok(stored.some((s) => s.unixMs < killedAt), 'statuses from before the crash survive it');
    assert.ok(stored.some((s) => s.unixMs > restartedAt), 'and after');
    assert.ok(outage.length > 0, `statuses published during the ${restartedAt - killedAt} ms outage are in the stream`);
    assert.equal(new Set(stored.map((s) => s.tMs)).size, stored.length, 'no status stored twice');
    t.diagnostic(`outage ${restartedAt - killedAt} ms; the command sent meanwhile took ${reply.attempts} tries; first status at a watcher ${gapMs} ms after the kill; ${outage.length} statuses from the outage replayed; runner reconnects: ${(runner.stderr().match(/bus reconnected/g) ?? []).length}`);

    runner.child.kill('SIGTERM');
    assert.equal(await runner.exited, 0, runner.stderr().slice(-2000));
  } finally {
    runner.child.kill('SIGKILL');
    await client.close();
    await watcher.close();
    await server.stop();
  }
});
