import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { Bus, GpuStateStore, decode } from '../../bus/index.ts';
import { subjects, type GpuStatusEvent } from '../../schemas/index.ts';
import { startNatsCluster, type TestNats } from '../support/nats.ts';
import { sleep, until } from '../support/wait.ts';
import { cleanEnv, startCli, type CliProcess } from './helpers.ts';

test('faults - three-node NATS cluster, runners on different nodes: one node killed, its runner fails over and control goes on everywhere', async (t) => {
  // Three nats-server nodes on loopback, routed into one cluster.
  const nodes = await startNatsCluster(3, 'colo');
  const [a, b, c] = nodes as [TestNats, TestNats, TestNats];
  const procs: CliProcess[] = [];
  // The watcher and the operator sit on node c; runner h1 knows only node a, runner h2 only node b:
  // h1 learns the other nodes from the cluster, as any NATS client does.
  const watcher = await connect({ servers: c.url });
  const statuses: Array<GpuStatusEvent & { at: number }> = [];
  watcher.subscribe('colo.v1.evt.*.*.status', { callback: (_e, m) => { statuses.push({ ...(decode(m.data) as GpuStatusEvent), at: Date.now() }); } });
  await watcher.flush();
  const operator = await Bus.connect({ url: c.url, name: 'operator', host: 'operator' });
  try {
    const h1 = startCli(['host', '--host-id', 'h1', '--backend', 'sim:1', '--speed', '5'], cleanEnv({ NATS_URL: a.url }));
    const h2 = startCli(['host', '--host-id', 'h2', '--backend', 'sim:1', '--speed', '5'], cleanEnv({ NATS_URL: b.url }));
    procs.push(h1, h2);
    const of = (host: string) => statuses.filter((s) => s.host === host);
    await until(() => of('h1').length >= 2 && of('h2').length >= 2, 40_000, () => `both runners' statuses across the cluster\n${h1.stderr()}\n${h2.stderr()}`);
    for (const host of ['h1', 'h2']) {
      const r = await operator.requestWithRetry<'gpu.command'>(subjects.gpuCommand(host, 'gpu0'), { type: 'gpu.command', action: 'set-slo', sloMs: 27 });
      assert.equal(r.ok, true, `command from node c to ${host}`);
    }

    const killedAt = Date.now();
    await a.kill();
    await until(() => /bus reconnected/.test(h1.stderr()), 20_000, () => `h1 to fail over to another node\n${h1.stderr()}`);
    await until(() => of('h1').some((s) => s.at > killedAt), 20_000, 'h1 statuses after the kill');
    const h1BackMs = Date.parse(/(\S+) host h1: bus reconnected/.exec(h1.stderr())![1]!) - killedAt;
    // Commands reach both runners; h2, on a node that lived, never stopped.
    for (const host of ['h1', 'h2']) {
      const r = await operator.requestWithRetry<'gpu.command'>(subjects.gpuCommand(host, 'gpu0'), { type: 'gpu.command', action: 'set-slo', sloMs: 29 }, { deadlineMs: 15_000 });
      assert.equal(r.ok, true, `command to ${host} after the kill`);
    }
    await until(() => ['h1', 'h2'].every((h) => of(h).at(-1)?.services[0]?.sloMs === 29 && of(h).at(-1)?.state === 'controlling'), 10_000, 'both GPUs controlling with the new SLO');
    // The GPU state in KV (three copies in a cluster) takes writes after the node is gone.
    let store: GpuStateStore | undefined;
    for (let i = 0; !store; i++) {
      assert.ok(i < 10, 'the KV bucket answers after the node died');
      store = (await GpuStateStore.open(operator)).store;
    }
    for (const host of ['h1', 'h2']) {
      for (let i = 0; (await store!.load(host, 'gpu0').catch(() => undefined))?.record.sloMs.resnet50 !== 29; i++) {
        assert.ok(i < 100, `${host}'s new SLO stored in KV after the node died`);
        await sleep(100);
      }
    }
    const h2Gaps = of('h2').map((s, i, all) => (i ? s.at - all[i - 1]!.at : 0));
    await sleep(200);
    t.diagnostic(`h1 (on the killed node) reconnected to another node ${h1BackMs} ms after the kill; h2's longest gap between statuses ${Math.max(...h2Gaps)} ms (status every 200 ms)`);
    const kvTrouble = [h1, h2].map((p) => (p.stderr().match(/state: cannot (save|read)[^\n]*/g) ?? []).length);
    t.diagnostic(`KV state writes that failed around the kill: h1 ${kvTrouble[0]}, h2 ${kvTrouble[1]}; ${[h1, h2].map((p) => p.stderr().match(/state: cannot (save|read)[^\n]*/)?.[0] ?? '').join(' | ')}`);
    for (const p of procs) p.child.kill('SIGTERM');
    assert.deepEqual(await Promise.all(procs.map((p) => p.exited)), [0, 0]);
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
    await operator.close();
    await watcher.close();
    for (const n of nodes) await n.stop();
  }
});
