import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Bus, GpuStateStore, StateSaver, findNatsServer } from '../../bus/index.ts';
import { SCHEMA_VERSION, type GpuStateRecord } from '../../schemas/index.ts';
import { startNats } from '../support/nats.ts';
import { sleep, until, waitFor } from '../support/wait.ts';

const record = (sloMs: number): GpuStateRecord => ({
  v: SCHEMA_VERSION, host: 'h', gpu: 'gpu0', policy: 'gpucolo', sloMs: { svc: sloMs }, savedUnixMs: Date.now(),
  knobs: { mpsSharePct: 25, pacing: { mode: 'duty', duty: 0.1, periodMs: 50 }, trainingRunning: true },
});

/** A nats-server without JetStream on `port`: KV writes fail at once ("jetstream is not enabled"), as in a re-election. */
async function withoutJetStream(port: number): Promise<ChildProcess> {
  const child = spawn(findNatsServer()!, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  await sleep(300);
  return child;
}
/** Resolves once the client is connected again (a flush goes through; while disconnected it throws). */
const reconnected = (bus: Bus) => waitFor(() => bus.nc.flush().then(() => true, () => false), 10_000, 'the client to reconnect', 100);
const stopped = (child: ChildProcess) => new Promise<void>((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else { child.once('exit', () => r()); child.kill('SIGKILL'); } });

test('bus - state saver: a record whose saves fail for longer than a few tries is stored once JetStream is back; close() gives up within its time and says so', async () => {
  const server = await startNats();
  const bus = await Bus.connect({ url: server.url, name: 'saver', host: 'saver' });
  const lines: string[] = [];
  let nojs: ChildProcess | undefined;
  try {
    const { store } = await GpuStateStore.open(bus);
    assert.ok(store, 'the KV bucket');
    const saver = new StateSaver(store, (line) => lines.push(line));
    saver.schedule(record(25));
    await saver.flush();
    assert.equal((await store.load('h', 'gpu0'))?.record.sloMs.svc, 25);

    // 5 s of a server without JetStream: every write fails at once. The saver once gave up after five tries 0.5 s
    // apart, leaving the store behind the GPU until its next change.
    await server.kill();
    nojs = await withoutJetStream(server.port);
    await reconnected(bus); // what fails from here is JetStream, at once
    saver.schedule(record(29));
    await sleep(5000);
    assert.ok(saver.failures >= 3, `${saver.failures} failed tries`);
    await stopped(nojs);
    await server.restart();
    await until(() => saver.writes === 2, 20_000, () => `the record saved once JetStream is back\n${lines.join('\n')}`);
    assert.equal((await store.load('h', 'gpu0'))?.record.sloMs.svc, 29);
    assert.ok(lines.some((l) => /cannot save h\/gpu0 .*jetstream is not enabled/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /saved h\/gpu0 .* after \d+ failed tries/.test(l)), lines.join('\n'));

    // Shutting down while writes fail: close() stops trying after its time and says which state was not stored.
    await server.kill();
    nojs = await withoutJetStream(server.port);
    await reconnected(bus);
    saver.schedule(record(31));
    const t0 = Date.now();
    await saver.close(1000);
    assert.ok(Date.now() - t0 < 8000, `close() took ${Date.now() - t0} ms`);
    assert.ok(lines.some((l) => /h\/gpu0's newest state was not saved/.test(l)), lines.join('\n'));
    assert.equal(saver.writes, 2);
  } finally {
    await bus.close().catch(() => undefined);
    if (nojs) await stopped(nojs);
    await server.stop();
  }
});
