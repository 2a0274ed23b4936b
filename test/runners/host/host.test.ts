import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, decode, encode } from '../../../bus/index.ts';
import { scaledClock } from '../../../actors/clock.ts';
import { startHost } from '../../../runners/host/host.ts';
import { DEFAULT_WORKLOADS } from '../../../runners/host/workloads.ts';
import { SCHEMA_VERSION, subjects, type BusRejectedEvent, type GpuDecisionEvent, type GpuStatusEvent } from '../../../schemas/index.ts';
import { useNats } from '../../support/nats.ts';
import { until } from '../../support/wait.ts';

const server = useNats({ raw: true });

test('host runner - controls two simulated GPUs end to end over NATS, seen by an independent client', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'host-a', host: 'ha' });
  const statuses = new Map<string, GpuStatusEvent>();
  const decisions: GpuDecisionEvent[] = [];
  // An independent NATS client and plain msgpack decode: what other systems see.
  server.raw.subscribe('colo.v1.evt.ha.>', {
    callback: (_e, m) => {
      const ev = decode(m.data) as GpuStatusEvent | GpuDecisionEvent;
      if (ev.type === 'gpu.status') statuses.set(ev.gpu, ev);
      if (ev.type === 'gpu.decision') decisions.push(ev);
    },
  });
  await server.raw.flush();
  const host = await startHost({ hostId: 'ha', gpus: 2, workloads: DEFAULT_WORKLOADS, clock: scaledClock(20), bus, seed: 7 });
  try {
    await until(() => [...statuses.values()].every((s) => s.tMs > 40_000) && statuses.size === 2, 20_000, '40 simulated seconds');
    for (const s of statuses.values()) {
      const svc = s.services[0]!;
      assert.ok(svc.sloWindows >= 30, `gpu ${s.gpu} has 1 s windows (${svc.sloWindows})`);
      assert.ok(svc.sloWindowsMet / svc.sloWindows >= 0.9, `gpu ${s.gpu} attainment ${svc.sloWindowsMet}/${svc.sloWindows}`);
      assert.ok(s.trainings[0]!.iterations > 0, `gpu ${s.gpu} training made progress`);
      assert.equal(s.state, 'controlling');
    }
    assert.ok(decisions.length > 0, 'the controller moved a knob at least once');
    assert.ok(decisions.every((d) => typeof d.reason === 'string' && d.reason.length > 0));

    // A command over the bus changes the SLO; the reply says what is in force.
    const reply = await bus.request<'gpu.command'>(subjects.gpuCommand('ha', 'gpu0'), { type: 'gpu.command', action: 'get-state' });
    assert.equal(reply.ok, true);
    assert.equal((reply.state as { policy: string }).policy, 'gpucolo');
  } finally {
    await host.stop();
    await bus.close();
  }
});

test('host runner - invalid payloads are rejected and counted while the runner keeps controlling', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'host-b', host: 'hb' });
  const rejected: BusRejectedEvent[] = [];
  let statusCount = 0;
  server.raw.subscribe(subjects.busRejected('hb'), { callback: (_e, m) => { rejected.push(decode(m.data) as BusRejectedEvent); } });
  server.raw.subscribe(subjects.gpuStatus('hb', 'gpu0'), { callback: () => { statusCount++; } });
  await server.raw.flush();
  const host = await startHost({ hostId: 'hb', gpus: 1, workloads: DEFAULT_WORKLOADS, clock: scaledClock(20), bus, seed: 3 });
  try {
    await until(() => statusCount >= 2, 10_000, 'first status');
    const windowSubject = subjects.inferenceWindow('hb', 'gpu0', 'resnet50');
    const cmdSubject = subjects.trainingCommand('hb', 'gpu0', 'wrn101');
    // A forged window claiming a huge latency must not reach the GPU actor and must not move a knob.
    server.raw.publish(windowSubject, encode({ v: SCHEMA_VERSION, type: 'inference.window', host: 'hb', gpu: 'gpu0', serviceId: 'resnet50', p99Ms: 'x' }));
    server.raw.publish(windowSubject, new Uint8Array([0xc1, 0xc1, 0xc1]));
    server.raw.publish(cmdSubject, encode({ v: 2, type: 'training.command', action: 'set-running', running: false, id: 'x', deadlineUnixMs: Date.now() + 1e6 }));
    server.raw.publish(cmdSubject, new Uint8Array(200_000));
    await until(() => rejected.length >= 4, 5000, 'four rejection events');
    assert.deepEqual(rejected.map((r) => r.reason).sort(), ['decode', 'oversize', 'schema', 'version']);
    assert.equal(bus.stats.rejected, 4);
    const before = statusCount;
    await until(() => statusCount >= before + 3, 10_000, 'status after the bad messages');
    const ctx = host.gpuActors[0]!.getSnapshot().context;
    assert.equal(ctx.knobs.trainingRunning, true, 'the rejected set-running=false never reached the training job');
    assert.equal(host.devices[0]!.trainingStatus('wrn101').state === 'stopped', false);
  } finally {
    await host.stop();
    await bus.close();
  }
});

test('host runner - stopping releases training: no sleep left, job running', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'host-c', host: 'hc' });
  const workloads = { ...DEFAULT_WORKLOADS, perGpu: { services: [{ id: 'svc', sloMs: 8, batch: 8, rateRps: 120 }], trainings: [{ id: 'job' }] } };
  const host = await startHost({ hostId: 'hc', gpus: 1, workloads, clock: scaledClock(20), bus, seed: 5 });
  await until(() => {
    const p = host.devices[0]!.trainingStatus('job').pacing;
    return p.mode === 'duty' ? p.duty > 0 : p.sleepMs > 0;
  }, 15_000, 'the controller to throttle training under a tight SLO');
  const device = host.devices[0]!;
  await host.stop();
  const st = device.trainingStatus('job');
  assert.equal(st.state === 'stopped', false);
  assert.deepEqual(st.pacing.mode === 'duty' ? st.pacing.duty : st.pacing.sleepMs, 0);
  await bus.close();
});
