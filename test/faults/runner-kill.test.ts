import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, GpuStateStore, decode } from '../../bus/index.ts';
import { subjects, type GpuDecisionEvent, type GpuStatusEvent, type HostLifecycleEvent } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';
import { sleep, until } from '../support/wait.ts';
import { cleanEnv, startCli, type CliProcess } from './helpers.ts';

const server = useNats({ raw: true });

test('faults - host runner SIGKILLed mid-run: the restarted runner gets its GPU state back from JetStream KV within 2 s and resumes control', async (t) => {
  const host = 'rk';
  const env = cleanEnv({ NATS_URL: server.url });
  const args = ['host', '--host-id', host, '--backend', 'sim:1', '--speed', '5', '--seed', '4'];
  const statuses: Array<GpuStatusEvent & { at: number }> = [];
  const decisions: Array<GpuDecisionEvent & { at: number }> = [];
  const lifecycle: HostLifecycleEvent[] = [];
  server.raw.subscribe(`colo.v1.evt.${host}.>`, {
    callback: (_e, m) => {
      const ev = decode(m.data) as GpuStatusEvent | GpuDecisionEvent | HostLifecycleEvent;
      if (ev.type === 'gpu.status') statuses.push({ ...ev, at: Date.now() });
      else if (ev.type === 'gpu.decision') decisions.push({ ...ev, at: Date.now() });
      else if (ev.type === 'host.lifecycle') lifecycle.push(ev);
    },
  });
  await server.raw.flush();
  const bus = await Bus.connect({ url: server.url, name: 'kill-test', host: 'kill-test' });
  const procs: CliProcess[] = [];
  try {
    const first = startCli(args, env);
    procs.push(first);
    await until(() => statuses.length >= 3, 30_000, () => `the first runner's status\n${first.stderr()}`);
    // State an operator set by command: a new SLO. It must outlive the runner.
    const slo = await bus.request<'gpu.command'>(subjects.gpuCommand(host, 'gpu0'), { type: 'gpu.command', action: 'set-slo', sloMs: 31 });
    assert.equal(slo.ok, true);
    const { store } = await GpuStateStore.open(bus);
    assert.ok(store, 'the KV bucket exists');
    await until(() => statuses.some((s) => s.services[0]?.sloMs === 31) && decisions.length >= 3, 20_000, 'the new SLO in force and the controller moving knobs');
    for (let i = 0; (await store!.load(host, 'gpu0'))?.record.sloMs.resnet50 !== 31; i++) {
      assert.ok(i < 100, 'the new SLO reaches KV');
      await sleep(50);
    }

    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null, 'killed, not exited');
    const killedAt = Date.now();
    // What the dead runner left in KV is what the next one must start from.
    const left = await store!.load(host, 'gpu0');
    assert.ok(left, 'state stored');
    const statusesBefore = statuses.length;
    const decisionsBefore = decisions.length;

    const second = startCli(args, env);
    procs.push(second);
    const restoredLine = () => /gpu0 state restored from KV revision (\d+) \(policy (\S+), mps (\S+)%, pacing (\{.*?\}), SLO (\{.*?\})\) (\d+) ms after the bus connected, (\d+) ms after process start/.exec(second.stderr());
    await until(() => restoredLine() !== null, 30_000, () => `the restarted runner to read its state\n${second.stderr()}`);
    const [, revision, policy, mps, pacing, sloJson, sinceConnect, sinceStart] = restoredLine()!;
    assert.equal(Number(revision), left!.revision, 'the newest stored revision');
    assert.equal(policy, left!.record.policy);
    assert.equal(Number(mps), left!.record.knobs.mpsSharePct);
    assert.deepEqual(JSON.parse(pacing!), left!.record.knobs.pacing);
    assert.deepEqual(JSON.parse(sloJson!), { resnet50: 31 });
    assert.ok(Number(sinceConnect) <= 2000, `state recovered ${sinceConnect} ms after the restarted runner connected (bar: 2000 ms)`);

    // It resumes control: statuses from the new runner carry the restored SLO, and the controller decides again.
    await until(() => statuses.slice(statusesBefore).some((s) => s.services[0]?.sloMs === 31 && s.state === 'controlling'), 15_000, 'a status from the restarted runner');
    await until(() => decisions.length > decisionsBefore, 15_000, 'a decision from the restarted runner');
    const resumedAt = statuses.slice(statusesBefore).find((s) => s.services[0]?.sloMs === 31)!.at;
    assert.ok(lifecycle.filter((l) => l.state === 'started').length >= 2, 'two incarnations started');
    t.diagnostic(`state recovered ${sinceConnect} ms after the restarted runner connected (${sinceStart} ms after its process started, most of it loading the runtime); first status with the restored SLO ${resumedAt - killedAt} ms after SIGKILL`);

    // A second SIGTERM while it stops (an impatient operator, or a supervisor's repeat) does not cut the stop short.
    second.child.kill('SIGTERM');
    await until(() => /stopping \(SIGTERM\)/.test(second.stderr()), 10_000, 'the runner stopping');
    assert.ok(second.child.kill('SIGTERM'), 'the second SIGTERM reached the runner while it stopped');
    assert.equal(await second.exited, 0, second.stderr().slice(-2000));
    assert.equal(second.stderr().match(/stopping \(/g)?.length, 1, 'one stop');
    const afterStop = await store!.load(host, 'gpu0');
    assert.ok(afterStop!.revision >= left!.revision, 'the restarted runner writes on from the stored revision (compare-and-set)');
    assert.doesNotMatch(second.stderr(), /changed under this runner/, 'no compare-and-set conflict: the dead runner wrote nothing after the kill');
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
    await bus.close();
  }
});

test('faults - nvidia-backend runner SIGKILLed while it throttles training: no job stays paused past the lease, and the restart gets the state back from KV', async (t) => {
  const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { processState } = await import('../../gpu/nvidia/index.ts');
  const { cleanup, fakeEnv, GPU0_UUID, STANDIN, tempDir } = await import('../nvidia/helpers.ts');
  const dir = tempDir('kill-lease');
  const state = join(dir, 'state');
  const workloads = join(dir, 'workloads.json');
  const leaseTtlMs = 2000;
  // A tight SLO against a slow service: the controller throttles both jobs hard (one cooperative, through
  // its lease file; one by SIGSTOP/SIGCONT).
  writeFileSync(workloads, JSON.stringify({
    policy: 'gpucolo', leaseTtlMs,
    gpus: [{
      gpu: GPU0_UUID,
      services: [{ id: 'svc', sloMs: 10, command: [process.execPath, join(STANDIN, 'inference.mjs')], env: { FAKE_LATENCY_MS: '30' }, latency: { source: 'stdout' } }],
      trainings: [
        { id: 'coop', command: [process.execPath, join(STANDIN, 'training.mjs')], pacing: 'cooperative' },
        { id: 'sig', command: [process.execPath, join(STANDIN, 'training.mjs')], pacing: 'signal' },
      ],
    }],
  }));
  const args = ['host', '--host-id', 'nk2', '--backend', 'nvidia', '--workloads', workloads, '--state-dir', state];
  const env = fakeEnv({ NATS_URL: server.url });
  const bus = await Bus.connect({ url: server.url, name: 'kill-lease-test', host: 'kill-lease-test' });
  t.after(() => bus.close());
  const first = startCli(args, env);
  const procs = [first];
  const pids = () => procs.flatMap((p) => [...p.stderr().matchAll(/launched pid (\d+)/g)].map((m) => Number(m[1])));
  const lease = () => JSON.parse(readFileSync(join(state, 'gpu0', 'coop.lease.json'), 'utf8')) as { duty: number; sleepMs: number; expiresUnixMs: number };
  try {
    const sigPid = () => Number(/gpu0\/sig: launched pid (\d+)/.exec(first.stderr())?.[1] ?? 0);
    await until(() => sigPid() > 0 && processState(sigPid()) === 'T', 30_000, () => `the signal-paced job paused by the controller\n${first.stderr().slice(-2000)}`);
    await until(() => existsSync(join(state, 'gpu0', 'coop.lease.json')) && (lease().duty > 0 || lease().sleepMs > 0), 10_000, 'the cooperative job throttled through its lease');
    const job = sigPid();
    const { store } = await GpuStateStore.open(bus);
    for (let i = 0; !(await store!.load('nk2', 'gpu0')); i++) {
      assert.ok(i < 100, `the runner saved its GPU state\n${first.stderr().slice(-2000)}`);
      await sleep(50);
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const killedAt = Date.now();
    const left = lease();
    // The hook sleeps only while the lease is unexpired: training is throttled at most until then.
    const throttledAfterDeathMs = left.expiresUnixMs - killedAt;
    assert.ok(throttledAfterDeathMs <= leaseTtlMs, `the cooperative job sleeps at most ${throttledAfterDeathMs} ms after the runner died (lease ${leaseTtlMs} ms)`);
    await until(() => processState(job) !== 'T', leaseTtlMs, 'the SIGSTOPped job resumed by the watchdog');
    const resumedAfterMs = Date.now() - killedAt;

    const second = startCli(args, env);
    procs.push(second);
    await until(() => /gpu0 state restored from KV revision \d+ .* (\d+) ms after the bus connected/.test(second.stderr()), 30_000, () => `the restart to read its state\n${second.stderr().slice(-2000)}`);
    const sinceConnect = Number(/gpu0 state restored from KV revision \d+ .* (\d+) ms after the bus connected/.exec(second.stderr())![1]);
    assert.ok(sinceConnect <= 2000, `state back ${sinceConnect} ms after the restarted runner connected`);
    await until(() => /host nk2: started/.test(second.stderr()), 20_000, 'the restarted runner to start');
    t.diagnostic(`after SIGKILL: cooperative job throttled at most ${throttledAfterDeathMs} ms more (lease ${leaseTtlMs} ms); SIGSTOPped job resumed after ${resumedAfterMs} ms; restarted runner had its GPU state ${sinceConnect} ms after connecting`);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.stderr().slice(-2000));
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
    cleanup(pids(), [join(state, 'mps0', 'pipe')]);
  }
});
