import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from '../../bus/index.ts';
import { processState } from '../../gpu/nvidia/index.ts';
import type { GpuDecisionEvent, GpuSafetyEvent, GpuStatusEvent } from '../../schemas/index.ts';
import { cleanup, fakeEnv, GPU0_UUID, STANDIN, tempDir } from '../nvidia/helpers.ts';
import { useNats } from '../support/nats.ts';
import { until } from '../support/wait.ts';
import { startCli } from './helpers.ts';

const server = useNats({ raw: true });

test('faults - an inference workload that stops reporting: the GPU actor says so, holds training at its safe setting, and resumes control when it returns', async (t) => {
  const dir = tempDir('silent');
  const state = join(dir, 'state');
  const workloads = join(dir, 'workloads.json');
  // A real runner on the nvidia backend (fake nvidia tools), a real inference process whose latency comes
  // from its stdout, and a cooperative training process.
  writeFileSync(workloads, JSON.stringify({
    policy: 'gpucolo',
    gpus: [{
      gpu: GPU0_UUID,
      services: [{ id: 'svc', sloMs: 25, command: [process.execPath, join(STANDIN, 'inference.mjs')], env: { FAKE_LATENCY_MS: '8', FAKE_RATE_RPS: '100' }, latency: { source: 'stdout' } }],
      trainings: [{ id: 'job', command: [process.execPath, join(STANDIN, 'training.mjs')], pacing: 'cooperative' }],
    }],
  }));
  const host = 'ws';
  const safety: Array<GpuSafetyEvent & { at: number }> = [];
  const statuses: GpuStatusEvent[] = [];
  const decisions: GpuDecisionEvent[] = [];
  server.raw.subscribe(`colo.v1.evt.${host}.>`, {
    callback: (_e, m) => {
      const ev = decode(m.data) as GpuSafetyEvent | GpuStatusEvent | GpuDecisionEvent;
      if (ev.type === 'gpu.safety') safety.push({ ...ev, at: Date.now() });
      else if (ev.type === 'gpu.status') statuses.push(ev);
      else if (ev.type === 'gpu.decision') decisions.push(ev);
    },
  });
  await server.raw.flush();
  const runner = startCli(['host', '--host-id', host, '--backend', 'nvidia', '--workloads', workloads, '--state-dir', state], fakeEnv({ NATS_URL: server.url }));
  const pids = () => [...runner.stderr().matchAll(/launched pid (\d+)/g)].map((m) => Number(m[1]));
  const inferencePid = () => Number(/gpu0\/svc: launched pid (\d+)/.exec(runner.stderr())?.[1] ?? 0);
  try {
    await until(() => (statuses.at(-1)?.services[0]?.p99Ms ?? 0) > 0 && statuses.at(-1)?.state === 'controlling', 30_000, () => `the runner controlling\n${runner.stderr()}`);
    const pid = inferencePid();
    assert.ok(pid > 0);

    // The workload hangs: alive, but it finishes nothing and prints nothing.
    process.kill(pid, 'SIGSTOP');
    await until(() => processState(pid) === 'T', 3000, 'the inference process stopped');
    const stoppedAt = Date.now();
    await until(() => safety.some((e) => e.condition === 'telemetry-lost' && e.at >= stoppedAt), 10_000, () => `a telemetry-lost event\n${runner.stderr().slice(-2000)}`);
    // The event the hang caused (a loaded machine may have shown a gap in the windows earlier).
    const lost = safety.find((e) => e.condition === 'telemetry-lost' && e.at >= stoppedAt)!;
    assert.match(lost.detail, /service svc finished no request for over 2000 ms/);
    await until(() => statuses.at(-1)?.state === 'safe', 5000, 'the GPU marked safe in its status');
    const safeStatus = statuses.at(-1)!;
    assert.deepEqual(safeStatus.pacing.mode === 'duty' ? safeStatus.pacing.duty : -1, 0.9, 'training held at the safe duty');
    assert.equal(safeStatus.trainingRunning, true, 'training is slowed, never paused');
    assert.ok(decisions.some((d) => d.tier === 'safety' && d.knob === 'pacing' && d.newValue === 0.9), 'a safety decision moved the pacing knob');

    // It comes back: control resumes from the controller's own knobs.
    process.kill(pid, 'SIGCONT');
    const resumedAt = Date.now();
    await until(() => safety.some((e) => e.condition === 'telemetry-restored' && e.at >= resumedAt), 10_000, () => `a telemetry-restored event\n${runner.stderr().slice(-2000)}`);
    await until(() => statuses.at(-1)?.state === 'controlling', 5000, 'the GPU controlling again');
    const restored = safety.find((e) => e.condition === 'telemetry-restored' && e.at >= resumedAt)!;
    t.diagnostic(`safe setting ${lost.at - stoppedAt} ms after the workload hung (bar: 2000 ms without a finished request, plus one window); control back ${restored.at - resumedAt} ms after it returned`);

    // It dies: the same.
    const lostBefore = safety.filter((e) => e.condition === 'telemetry-lost').length;
    process.kill(pid, 'SIGKILL');
    await until(() => safety.filter((e) => e.condition === 'telemetry-lost').length > lostBefore, 10_000, 'telemetry-lost after the workload died');
    await until(() => statuses.at(-1)?.state === 'safe', 5000, 'safe after the workload died');
    assert.match(runner.stderr(), /inference pid \d+ exited on its own/);

    runner.child.kill('SIGTERM');
    assert.equal(await runner.exited, 0, runner.stderr().slice(-2000));
  } finally {
    runner.child.kill('SIGKILL');
    cleanup(pids(), [join(state, 'mps0', 'pipe')]);
  }
});
