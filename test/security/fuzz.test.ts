import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { metrics } from '@opentelemetry/api';
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { Bus, DEFAULT_MAX_PAYLOAD_BYTES, decode } from '../../bus/index.ts';
import type { Knobs, Pacing } from '../../control/types.ts';
import { GpuModel, SimGpuDevice, loadProfile } from '../../gpu/model/index.ts';
import { resetInstruments } from '../../observability/metrics.ts';
import { scaledClock } from '../../actors/clock.ts';
import { startHost } from '../../runners/host/host.ts';
import { DEFAULT_WORKLOADS } from '../../runners/host/workloads.ts';
import { SCHEMA_VERSION, subjects, type BusRejectedEvent } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';
import { until } from '../support/wait.ts';
import { FUZZ_KINDS, hostilePayload, rng, wouldPass } from './fuzz-payloads.ts';

/** Pulls metrics on demand: the rejection counter as an operator's exporter would see it. */
class PullReader extends MetricReader {
  constructor() { super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE }); }
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const reader = new PullReader();
before(() => {
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  resetInstruments();
});
const server = useNats({ raw: true });

/** A simulated GPU that records every actuation reaching it: the knobs an attacker would want to move. */
class RecordingDevice extends SimGpuDevice {
  readonly actuations: string[] = [];
  override setArrivalRate(id: string, rateRps: number): void { this.actuations.push(`rate ${id} ${rateRps}`); super.setArrivalRate(id, rateRps); }
  override setBatch(id: string, batch: number): void { this.actuations.push(`batch ${id} ${batch}`); super.setBatch(id, batch); }
  override setPacing(id: string, pacing: Pacing): void { this.actuations.push(`pacing ${id} ${JSON.stringify(pacing)}`); super.setPacing(id, pacing); }
  override setMpsShare(id: string, pct: number): void { this.actuations.push(`mps ${id} ${pct}`); super.setMpsShare(id, pct); }
  override setTrainingRunning(id: string, running: boolean): void { this.actuations.push(`running ${id} ${running}`); super.setTrainingRunning(id, running); }
}

async function rejectedMetric(host: string): Promise<number> {
  const { resourceMetrics } = await reader.collect();
  let total = 0;
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name !== 'gpucolo.bus.rejected') continue;
      for (const p of m.dataPoints) if (p.attributes['gpucolo.host'] === host) total += p.value as number;
    }
  }
  return total;
}

const N = 10_000;

test('fuzz - 10,000 hostile payloads on every subject a host runner listens on: all rejected, counted and reported, no knob moved, valid commands still work', async (t) => {
  const host = 'fz';
  const bus = await Bus.connect({ url: server.url, name: 'fuzz-host', host });
  // Real time: the safety watchdog's 2 s without telemetry is 2 s of wall time, as in production.
  const clock = scaledClock(1);
  const devices: RecordingDevice[] = [];
  // no-colocation holds its knobs still, so any actuation during the flood would be the flood's doing.
  const running = await startHost({
    hostId: host, gpus: 1, workloads: DEFAULT_WORKLOADS, clock, bus, seed: 11, policy: 'no-colocation',
    makeDevice: (index: number, gpuId: string, initial: Knobs) => {
      const d = new RecordingDevice(new GpuModel({
        profile: loadProfile(DEFAULT_WORKLOADS.profile!), seed: index + 1, startMs: clock.now(),
        services: DEFAULT_WORKLOADS.perGpu!.services.map((s) => ({ id: s.id, batch: s.batch, rateRps: s.rateRps })),
        trainings: DEFAULT_WORKLOADS.perGpu!.trainings.map((t) => ({ id: t.id, mpsSharePct: initial.mpsSharePct, pacing: initial.pacing, running: initial.trainingRunning })),
      }), clock.now, { id: gpuId, index });
      devices.push(d);
      return d;
    },
  });
  const rejectedEvents: BusRejectedEvent[] = [];
  let statuses = 0;
  server.raw.subscribe(subjects.busRejected(host), { callback: (_e, m) => { rejectedEvents.push(decode(m.data) as BusRejectedEvent); } });
  server.raw.subscribe(subjects.gpuStatus(host, 'gpu0'), { callback: () => { statuses++; } });
  await server.raw.flush();
  try {
    await until(() => statuses >= 2, 10_000, 'the runner to report');
    const device = devices[0]!;
    const gpuActor = running.gpuActors[0]!;
    const before = { ...gpuActor.getSnapshot().context };
    const svc = 'resnet50';
    const job = 'wrn101';
    const cmd = { v: SCHEMA_VERSION, id: 'fuzz', deadlineUnixMs: Date.now() + 60_000 };
    // Every subject the runner subscribes to, with a valid message of its type to mutate; the wildcard
    // subscriptions also get services and jobs that do not exist.
    const targets: Array<{ subject: string; valid: Record<string, unknown> }> = [
      { subject: subjects.inferenceWindow(host, 'gpu0', svc), valid: { v: SCHEMA_VERSION, type: 'inference.window', host, gpu: 'gpu0', serviceId: svc, seq: 1, tMs: 1000, windowMs: 200, sloMs: 25, count: 10, meanMs: 5, p50Ms: 5, p95Ms: 8, p99Ms: 9, maxMs: 9, rateRps: 50, sloWindows: 1, sloWindowsMet: 1, runP99Ms: 9 } },
      { subject: subjects.inferenceWindow(host, 'gpu0', 'ghost'), valid: { v: SCHEMA_VERSION, type: 'inference.window', host, gpu: 'gpu0', serviceId: 'ghost', seq: 1, tMs: 1000, windowMs: 200, sloMs: 0.001, count: 10, meanMs: 500, p50Ms: 500, p95Ms: 800, p99Ms: 900, maxMs: 900, rateRps: 50, sloWindows: 1, sloWindowsMet: 0, runP99Ms: 900 } },
      { subject: subjects.trainingProgress(host, 'gpu0', job), valid: { v: SCHEMA_VERSION, type: 'training.progress', host, gpu: 'gpu0', jobId: job, seq: 1, tMs: 1000, windowMs: 200, iterations: 5, itersPerSec: 2, state: 'running', mpsSharePct: 50, pacing: { mode: 'duty', duty: 0.2, periodMs: 50 } } },
      { subject: subjects.trainingCommand(host, 'gpu0', job), valid: { ...cmd, type: 'training.command', action: 'set-pacing', pacing: { mode: 'duty', duty: 0.95, periodMs: 50 } } },
      { subject: subjects.trainingCommand(host, 'gpu0', job), valid: { ...cmd, type: 'training.command', action: 'set-mps-share', mpsSharePct: 10 } },
      { subject: subjects.trainingCommand(host, 'gpu0', job), valid: { ...cmd, type: 'training.command', action: 'set-running', running: true } },
      { subject: subjects.inferenceCommand(host, 'gpu0', svc), valid: { ...cmd, type: 'inference.command', action: 'set-rate', rateRps: 10 } },
      { subject: subjects.inferenceCommand(host, 'gpu0', svc), valid: { ...cmd, type: 'inference.command', action: 'set-batch', batch: 4 } },
      { subject: subjects.gpuCommand(host, 'gpu0'), valid: { ...cmd, type: 'gpu.command', action: 'set-slo', sloMs: 1 } },
      { subject: subjects.gpuCommand(host, 'gpu0'), valid: { ...cmd, type: 'gpu.command', action: 'set-policy', policy: 'gpucolo' } },
      { subject: subjects.placementCommand(host, 'gpu0'), valid: { ...cmd, type: 'placement.command', action: 'drain-service', serviceId: svc } },
      { subject: subjects.placementCommand(host, 'gpu0'), valid: { ...cmd, type: 'placement.command', action: 'start-service', serviceId: 'intruder', sloMs: 5, batch: 1, rateRps: 100 } },
    ];
    const r = rng(20261125);
    const rejectedBefore = bus.stats.rejected;
    const handlerErrorsBefore = bus.stats.handlerErrors;
    const receivedBefore = bus.stats.received;
    const actuationsBefore = device.actuations.length;
    const perKind = new Map<string, number>();
    let redrawn = 0;
    let sent = 0;
    const replies: Promise<unknown>[] = [];
    const floodStartMs = performance.now();
    while (sent < N) {
      const t = targets[sent % targets.length]!;
      const kind = FUZZ_KINDS[Math.floor(r() * FUZZ_KINDS.length)]!;
      const bytes = hostilePayload(r, kind, t.valid);
      // A mutation may by chance still be a valid message: that is not hostile input, draw again.
      if (wouldPass(t.subject, bytes, DEFAULT_MAX_PAYLOAD_BYTES)) { redrawn++; continue; }
      perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
      // Some commands are sent as requests: a rejected command gets no reply, since nothing was run.
      if (t.subject.endsWith('.cmd') && sent % 50 < 10) {
        replies.push(server.raw.request(t.subject, bytes, { timeout: 1500 }).then(() => 'replied', () => 'no reply'));
      } else {
        server.raw.publish(t.subject, bytes);
      }
      sent++;
      if (sent % 250 === 0) await server.raw.flush();
    }
    await server.raw.flush();
    await until(() => bus.stats.rejected - rejectedBefore >= N, 30_000, `all ${N} rejections (have ${bus.stats.rejected - rejectedBefore})`);
    const floodMs = performance.now() - floodStartMs;
    t.diagnostic(`${N} payloads rejected in ${floodMs.toFixed(0)} ms (${(N / floodMs * 1000).toFixed(0)}/s); by reason ${JSON.stringify(bus.stats.rejectedByReason)}; by kind ${JSON.stringify(Object.fromEntries(perKind))}; ${redrawn} still-valid mutations drawn again`);
    assert.equal(bus.stats.rejected - rejectedBefore, N, 'every hostile payload rejected exactly once');
    assert.equal(bus.stats.handlerErrors, handlerErrorsBefore, 'no handler saw a hostile payload');
    assert.deepEqual([...new Set(await Promise.all(replies))], ['no reply'], 'a rejected command is never answered (never run)');
    const byReason = bus.stats.rejectedByReason;
    for (const reason of ['oversize', 'decode', 'schema', 'version'] as const) assert.ok(byReason[reason] > 0, `some rejected as ${reason}: ${JSON.stringify(byReason)}`);
    assert.equal(perKind.size, FUZZ_KINDS.length, 'every kind of hostile payload was sent');
    assert.ok(redrawn < N / 10, `${redrawn} mutations were still valid and drawn again`);

    // Visible: the last rejection event carries the true total (events over the rate cap are summarised), and the metric counts all.
    await until(() => rejectedEvents.at(-1)?.rejectedTotal === bus.stats.rejected, 5000, `a rejection event with total ${bus.stats.rejected}`);
    assert.equal(await rejectedMetric(host), bus.stats.rejected, 'the gpucolo.bus.rejected metric counts every rejection');

    // Nothing moved: no actuation reached the device, the GPU actor's policy, SLOs and knobs are unchanged.
    const mid = gpuActor.getSnapshot().context;
    assert.deepEqual(device.actuations.slice(actuationsBefore), [], 'no knob moved');
    assert.equal(mid.policyName, before.policyName);
    assert.deepEqual(mid.knobs, before.knobs);
    assert.deepEqual(Object.keys(mid.services), [svc], 'no ghost service was created, none drained');
    assert.equal(mid.services[svc]!.sloMs, before.services[svc]!.sloMs);
    assert.equal(mid.safe, false, 'telemetry kept flowing: no fallback to the safe setting');
    assert.ok(bus.stats.received > receivedBefore, 'the runner kept receiving its own telemetry during the flood');

    // And valid commands still work.
    const s1 = statuses;
    const rate = await bus.request<'inference.command'>(subjects.inferenceCommand(host, 'gpu0', svc), { type: 'inference.command', action: 'set-rate', rateRps: 90 });
    assert.equal(rate.ok, true, JSON.stringify(rate));
    const slo = await bus.request<'gpu.command'>(subjects.gpuCommand(host, 'gpu0'), { type: 'gpu.command', action: 'set-slo', sloMs: 30 });
    assert.equal(slo.ok, true, JSON.stringify(slo));
    await until(() => device.actuations.some((a) => a === `rate ${svc} 90`), 5000, 'the valid set-rate to reach the device');
    assert.equal(gpuActor.getSnapshot().context.services[svc]!.sloMs, 30);
    await until(() => statuses >= s1 + 2, 10_000, 'status after the flood');
  } finally {
    await running.stop();
    await bus.close();
  }
});

test('fuzz - a host runner process flooded by an independent client: it keeps running, moves no knob, counts every rejection, stops cleanly', async () => {
  const { startCli, cleanEnv } = await import('../faults/helpers.ts');
  const host = 'fp';
  const runner = startCli(['host', '--host-id', host, '--backend', 'sim:1', '--speed', '5', '--policy', 'no-colocation', '--json'], cleanEnv({ NATS_URL: server.url }));
  const statuses: Array<{ mpsSharePct: number; pacing: unknown; trainingRunning: boolean; services: Array<{ sloMs: number }> }> = [];
  server.raw.subscribe(subjects.gpuStatus(host, 'gpu0'), { callback: (_e, m) => { statuses.push(decode(m.data) as never); } });
  await server.raw.flush();
  try {
    await until(() => statuses.length >= 2, 30_000, `the runner's status\n${runner.stderr()}`);
    const r = rng(7);
    const cmd = { v: SCHEMA_VERSION, id: 'flood', deadlineUnixMs: Date.now() + 60_000 };
    const targets = [
      { subject: subjects.trainingCommand(host, 'gpu0', 'wrn101'), valid: { ...cmd, type: 'training.command', action: 'set-running', running: true } },
      { subject: subjects.gpuCommand(host, 'gpu0'), valid: { ...cmd, type: 'gpu.command', action: 'set-slo', sloMs: 1 } },
      { subject: subjects.inferenceWindow(host, 'gpu0', 'resnet50'), valid: { v: SCHEMA_VERSION, type: 'inference.window', host, gpu: 'gpu0', serviceId: 'resnet50', seq: 1, tMs: 1, windowMs: 200, sloMs: 1, count: 1, meanMs: 500, p50Ms: 500, p95Ms: 500, p99Ms: 500, maxMs: 500, rateRps: 1, sloWindows: 0, sloWindowsMet: 0, runP99Ms: 500 } },
    ];
    const flood = 2000;
    for (let sent = 0; sent < flood;) {
      const t = targets[sent % targets.length]!;
      const bytes = hostilePayload(r, FUZZ_KINDS[Math.floor(r() * FUZZ_KINDS.length)]!, t.valid);
      if (wouldPass(t.subject, bytes, DEFAULT_MAX_PAYLOAD_BYTES)) continue;
      server.raw.publish(t.subject, bytes);
      if (++sent % 250 === 0) await server.raw.flush();
    }
    await server.raw.flush();
    const seen = statuses.length;
    await until(() => statuses.length >= seen + 3, 15_000, 'statuses after the flood');
    runner.child.kill('SIGTERM');
    assert.equal(await runner.exited, 0, runner.stderr().slice(-2000));
    const summary = JSON.parse(runner.stdout().trim().split('\n').at(-1)!) as { bus: { rejected: number; handlerErrors: number } };
    assert.equal(summary.bus.rejected, flood, 'every payload rejected and counted');
    assert.equal(summary.bus.handlerErrors, 0);
    const first = statuses[0]!;
    assert.ok(statuses.every((s) => s.mpsSharePct === first.mpsSharePct && JSON.stringify(s.pacing) === JSON.stringify(first.pacing) && s.trainingRunning === first.trainingRunning && s.services[0]!.sloMs === first.services[0]!.sloMs), `no knob or SLO moved: ${JSON.stringify(statuses.map((s) => [s.mpsSharePct, s.pacing, s.trainingRunning, s.services[0]?.sloMs, (s as never as { state: string }).state]))}`);
  } finally {
    runner.child.kill('SIGKILL');
  }
});
