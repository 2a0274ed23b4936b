import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../../../bus/index.ts';
import type { SimGpuDevice } from '../../../gpu/model/index.ts';
import { scaledClock } from '../../../actors/clock.ts';
import { startHost } from '../../../runners/host/host.ts';
import { subjects, type GpuStatusEvent } from '../../../schemas/index.ts';
import { useNats } from '../../support/nats.ts';
import { until } from '../../support/wait.ts';

const server = useNats();

test('fleet placement - a service moves between GPUs with no request lost; a training job checkpoints and resumes elsewhere', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'placement', host: 'pa' });
  const statuses = new Map<string, GpuStatusEvent>();
  bus.subscribe<'gpu.status'>(subjects.gpuStatus('pa', '*'), ({ message }) => { statuses.set(message.gpu, message); });
  const workloads = {
    profile: 'rtx3090-resnet50-wrn101',
    gpus: [
      { services: [{ id: 'svc-a', sloMs: 25, batch: 2, rateRps: 60 }], trainings: [{ id: 'job-a' }] },
      { services: [{ id: 'svc-b', sloMs: 25, batch: 2, rateRps: 60 }], trainings: [] },
    ],
  };
  const host = await startHost({ hostId: 'pa', gpus: 2, workloads, clock: scaledClock(20), bus, seed: 9 });
  const cmd = (gpu: string, body: Record<string, unknown>) =>
    bus.request<'placement.command'>(subjects.placementCommand('pa', gpu), { type: 'placement.command', ...body } as never, { timeoutMs: 15_000 });
  try {
    await until(() => (statuses.get('gpu0')?.tMs ?? 0) > 10_000 && (statuses.get('gpu0')?.trainings[0]?.iterations ?? 0) > 3, 20_000, 'training progress on gpu0');
    const described = await cmd('gpu1', { action: 'describe' });
    assert.deepEqual((described.state as { services: Array<{ id: string }> }).services.map((s) => s.id), ['svc-b']);

    // Inference: start on gpu0 first, then drain gpu1.
    const started = await cmd('gpu0', { action: 'start-service', serviceId: 'svc-b', sloMs: 25, batch: 2, rateRps: 60 });
    assert.equal(started.ok, true, started.error);
    const drained = await cmd('gpu1', { action: 'drain-service', serviceId: 'svc-b' });
    assert.equal(drained.ok, true, drained.error);
    const old = (host.devices[1] as SimGpuDevice).model.serviceStats('svc-b');
    assert.equal(old.inSystem, 0);
    assert.equal(old.dropped, 0);
    assert.equal(old.arrivals, old.completions, 'every request that reached the old GPU finished there');
    assert.ok(old.arrivals > 500);
    // Repeating the drain is harmless; the service now runs only on gpu0.
    assert.equal((await cmd('gpu1', { action: 'drain-service', serviceId: 'svc-b' })).ok, true);
    await until(() => (statuses.get('gpu0')?.services.length ?? 0) === 2 && statuses.get('gpu1')?.services.length === 0, 10_000, 'status after the move');

    // Training: checkpoint on gpu0, resume on gpu1 from the checkpoint.
    const ck = await cmd('gpu0', { action: 'checkpoint-training', jobId: 'job-a' });
    assert.equal(ck.ok, true, ck.error);
    const iterations = (ck.state as { checkpoint: { iterations: number } }).checkpoint.iterations;
    assert.ok(iterations > 3);
    assert.equal(host.devices[0]!.trainingStatus('job-a').state, 'stopped');
    const resumed = await cmd('gpu1', { action: 'start-training', jobId: 'job-a', iterations });
    assert.equal(resumed.ok, true, resumed.error);
    await until(() => (statuses.get('gpu1')?.trainings[0]?.iterations ?? 0) > iterations + 2, 30_000, 'progress after the restart on gpu1');
    assert.equal(statuses.get('gpu1')!.trainings[0]!.jobId, 'job-a');
    assert.equal(statuses.get('gpu0')!.trainings.length, 0);
    // gpu1 has no inference now: it must not fall back to the safe setting (there is no latency to protect).
    assert.equal(statuses.get('gpu1')!.state, 'controlling');
    // Bad placement commands are refused with a reason.
    const bad = await cmd('gpu1', { action: 'start-service', serviceId: 'x' });
    assert.equal(bad.ok, false);
    assert.match(bad.error ?? '', /needs serviceId, sloMs, batch and rateRps/);
  } finally {
    await host.stop();
    await bus.close();
  }
});

test('fleet placement - a drain that outlasts its reply still takes the service off the GPU once its requests are done', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'placement-drain', host: 'pd' });
  const statuses = new Map<string, GpuStatusEvent>();
  bus.subscribe<'gpu.status'>(subjects.gpuStatus('pd', '*'), ({ message }) => { statuses.set(message.gpu, message); });
  const workloads = { profile: 'rtx3090-resnet50-wrn101', gpus: [{ services: [{ id: 'svc-d', sloMs: 25, batch: 2, rateRps: 300 }], trainings: [] }] };
  // 1 ms: the reply gives up long before the last requests finish (the actor is done only after its last window).
  const host = await startHost({ hostId: 'pd', gpus: 1, workloads, clock: scaledClock(20), bus, seed: 3, drainTimeoutMs: 1 });
  const cmd = (body: Record<string, unknown>) =>
    bus.request<'placement.command'>(subjects.placementCommand('pd', 'gpu0'), { type: 'placement.command', ...body } as never, { timeoutMs: 15_000 });
  try {
    await until(() => (statuses.get('gpu0')?.tMs ?? 0) > 5_000, 20_000, 'the GPU serving');
    const drained = await cmd({ action: 'drain-service', serviceId: 'svc-d' });
    assert.equal(drained.ok, false);
    assert.match(drained.error ?? '', /still has requests in flight after 1 ms \(it takes no new ones, and leaves this GPU once they are done\)/);
    // Before, the service stayed listed (and served nothing) for as long as the runner ran.
    await until(() => statuses.get('gpu0')?.services.length === 0, 10_000, 'svc-d off gpu0 once drained');
    const described = await cmd({ action: 'describe' });
    assert.deepEqual((described.state as { services: unknown[] }).services, []);
    const stats = (host.devices[0] as SimGpuDevice).model.serviceStats('svc-d');
    assert.equal(stats.inSystem, 0);
    assert.equal(stats.arrivals, stats.completions, 'every request that arrived finished');
    // Draining it again is harmless.
    assert.equal((await cmd({ action: 'drain-service', serviceId: 'svc-d' })).ok, true);
  } finally {
    await host.stop();
    await bus.close();
  }
});
