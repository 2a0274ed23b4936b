import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { Bus, CommandError, decode, encode } from '../../bus/index.ts';
import { SCHEMA_VERSION, subjects, type BusRejectedEvent, type InferenceWindow } from '../../schemas/index.ts';
import { setupTelemetry } from '../../observability/setup.ts';
import { tracer } from '../../observability/tracing.ts';
import { context, trace } from '@opentelemetry/api';
import { useNats } from '../support/nats.ts';
import { sleep, until } from '../support/wait.ts';

before(() => { setupTelemetry('gpucolo-test'); });
const server = useNats();

function window(seq: number): InferenceWindow {
  return {
    v: SCHEMA_VERSION, type: 'inference.window', host: 'h1', gpu: 'g0', serviceId: 's0', seq, tMs: 1000, windowMs: 200,
    sloMs: 50, count: 10, meanMs: 5, p50Ms: 5, p95Ms: 8, p99Ms: 9, maxMs: 9, rateRps: 50, sloWindows: 1, sloWindowsMet: 1, runP99Ms: 9,
  };
}

test('bus - valid messages reach the handler with trace context from headers', async () => {
  const bus = await Bus.connect({ url: server.url, name: 't1', host: 'h1' });
  const got: InferenceWindow[] = [];
  let traceId = '';
  bus.subscribe<'inference.window'>(subjects.inferenceWindow('h1', 'g0', '*'), (r) => {
    got.push(r.message);
    traceId = trace.getSpanContext(r.traceContext)?.traceId ?? '';
  });
  await bus.nc.flush();
  const span = tracer().startSpan('test');
  bus.publish(subjects.inferenceWindow('h1', 'g0', 's0'), window(1), trace.setSpan(context.active(), span));
  span.end();
  await until(() => got.length === 1, 3000, 'the message', 10);
  assert.equal(got[0]!.seq, 1);
  assert.equal(traceId, span.spanContext().traceId);
  await bus.close();
});

test('bus - invalid, unknown-version, oversize and non-msgpack payloads are dropped, counted and reported', async () => {
  const bus = await Bus.connect({ url: server.url, name: 't2', host: 'h2', maxPayloadBytes: 4096 });
  const raw = await connect({ servers: server.url });
  const got: InferenceWindow[] = [];
  const rejected: BusRejectedEvent[] = [];
  bus.subscribe<'inference.window'>(subjects.inferenceWindow('h2', 'g0', '*'), (r) => { got.push(r.message); });
  raw.subscribe(subjects.busRejected('h2'), { callback: (_e, m) => { rejected.push(decode(m.data) as BusRejectedEvent); } });
  await bus.nc.flush();
  await raw.flush();
  const subject = subjects.inferenceWindow('h2', 'g0', 's0');
  raw.publish(subject, new Uint8Array([0xc1, 0xff, 0x00])); // 0xc1 is never valid msgpack
  raw.publish(subject, encode({ ...window(2), p99Ms: 'fast' }));
  raw.publish(subject, encode({ ...window(3), v: 99 }));
  raw.publish(subject, new Uint8Array(5000));
  raw.publish(subject, encode(window(4)));
  await until(() => got.length === 1 && rejected.length === 4, 3000, 'one message through, four rejected', 10);
  assert.equal(got[0]!.seq, 4, 'only the valid message reaches the handler');
  assert.equal(bus.stats.rejected, 4);
  assert.deepEqual(bus.stats.rejectedByReason, { oversize: 1, decode: 1, schema: 1, 'unknown-subject': 0, version: 1 });
  assert.deepEqual(rejected.map((r) => r.reason).sort(), ['decode', 'oversize', 'schema', 'version']);
  await raw.close();
  await bus.close();
});

test('bus - commands: deadline, idempotency key, reply', async () => {
  const bus = await Bus.connect({ url: server.url, name: 't3', host: 'h3' });
  let applied = 0;
  bus.serve<'training.command'>(subjects.trainingCommand('h3', 'g0', '*'), (r) => {
    applied++;
    return { ok: true, state: { mpsSharePct: r.message.mpsSharePct } };
  });
  await bus.nc.flush();
  const subject = subjects.trainingCommand('h3', 'g0', 'j0');
  const body = { type: 'training.command' as const, action: 'set-mps-share' as const, mpsSharePct: 40, id: 'cmd-1' };
  const first = await bus.request<'training.command'>(subject, body);
  const again = await bus.request<'training.command'>(subject, body);
  assert.equal(first.ok, true);
  assert.deepEqual(first.state, { mpsSharePct: 40 });
  assert.equal(again.duplicate, true);
  assert.equal(applied, 1, 'a repeated idempotency key is applied once');
  const late = await bus.request<'training.command'>(subject, { ...body, id: 'cmd-2', deadlineUnixMs: Date.now() - 1 });
  assert.equal(late.ok, false);
  assert.match(late.error ?? '', /deadline/);
  await assert.rejects(bus.request<'training.command'>(subjects.trainingCommand('h3', 'g9', 'j0'), { ...body, id: 'cmd-3' }, { timeoutMs: 300 }), CommandError);
  await bus.close();
});

test('bus - embedded default starts a private nats-server and stops it on close', async () => {
  const saved = process.env.NATS_URL;
  delete process.env.NATS_URL;
  const bus = await Bus.connect({ name: 't4', host: 'h4' });
  assert.equal(bus.embedded, true);
  assert.match(bus.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  await bus.close();
  await assert.rejects(connect({ servers: bus.url, maxReconnectAttempts: 0, reconnect: false }));
  if (saved !== undefined) process.env.NATS_URL = saved;
});

test('bus - events are kept in JetStream so a late subscriber can replay them', async () => {
  const { ensureEventsStream, replayEvents } = await import('../../bus/index.ts');
  const bus = await Bus.connect({ url: server.url, name: 't5', host: 'h5' });
  assert.deepEqual(await ensureEventsStream(bus), { ok: true });
  assert.deepEqual(await ensureEventsStream(bus), { ok: true }, 'a second host finds the stream there');
  for (const state of ['started', 'stopping', 'stopped'] as const) {
    bus.publish(subjects.hostLifecycle('h5'), { v: SCHEMA_VERSION, type: 'host.lifecycle', host: 'h5', unixMs: Date.now(), state, gpus: ['g0'], backend: 'sim:1', pid: 1 });
  }
  await bus.nc.flush();
  await sleep(100);
  const late = await Bus.connect({ url: server.url, name: 't5-late', host: 'h5b' });
  const seen: string[] = [];
  await replayEvents(late, ({ message }) => { if (message.type === 'host.lifecycle' && message.host === 'h5') seen.push(message.state); });
  assert.deepEqual(seen, ['started', 'stopping', 'stopped']);
  await late.close();
  await bus.close();
});

test('bus - replies come under a per-host inbox prefix, so a server can fence each user to its own replies', async () => {
  const { inboxPrefixFor } = await import('../../bus/index.ts');
  assert.equal(inboxPrefixFor({ host: 'rack1' }, {}), '_INBOX.rack1');
  assert.equal(inboxPrefixFor({ host: 'rack1' }, { NATS_INBOX_PREFIX: '_INBOX.ops' }), '_INBOX.ops');
  assert.equal(inboxPrefixFor({ host: 'rack1', inboxPrefix: '_I.r1' }, { NATS_INBOX_PREFIX: '_INBOX.ops' }), '_I.r1');
  assert.throws(() => inboxPrefixFor({ host: 'x', inboxPrefix: '_INBOX.*' }, {}), /no wildcards/);
  const a = await Bus.connect({ url: server.url, name: 'ibx-a', host: 'ibx-a' });
  const seen: string[] = [];
  const spy = await connect({ servers: server.url });
  spy.subscribe('_INBOX.>', { callback: (_e, m) => { seen.push(m.subject); } });
  await spy.flush();
  try {
    a.serve<'gpu.command'>(subjects.gpuCommand('ibx-a', 'g0'), () => ({ ok: true }));
    await a.nc.flush();
    assert.equal((await a.request<'gpu.command'>(subjects.gpuCommand('ibx-a', 'g0'), { type: 'gpu.command', action: 'get-state' })).ok, true);
    await spy.flush();
    assert.ok(seen.length > 0 && seen.every((s) => s.startsWith('_INBOX.ibx-a.')), seen.join(', '));
  } finally {
    await spy.close();
    await a.close();
  }
});
