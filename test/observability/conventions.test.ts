import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { prometheusEndpoint } from '../../observability/env-exporters.ts';
import { telemetryResource } from '../../observability/setup.ts';
import { messagingAttributes, messagingSpanName, setMessagingServer, subjectTemplate } from '../../observability/spans.ts';
import { subjects } from '../../schemas/index.ts';

test('conventions - every subject maps to its template, so span names stay low-cardinality', () => {
  const cases: [string, string][] = [
    [subjects.inferenceWindow('h-1', 'gpu0', 'resnet50'), 'colo.v1.{host}.{gpu}.inf.{service}.window'],
    [subjects.inferenceCommand('h-1', 'gpu0', 'resnet50'), 'colo.v1.{host}.{gpu}.inf.{service}.cmd'],
    [subjects.trainingProgress('h-1', 'gpu3', 'wrn101'), 'colo.v1.{host}.{gpu}.train.{job}.progress'],
    [subjects.trainingCommand('h-1', 'gpu3', 'wrn101'), 'colo.v1.{host}.{gpu}.train.{job}.cmd'],
    [subjects.gpuCommand('h-1', 'gpu3'), 'colo.v1.{host}.{gpu}.cmd'],
    [subjects.placementCommand('h-1', 'gpu3'), 'colo.v1.{host}.{gpu}.placement'],
    [subjects.gpuStatus('h-1', 'gpu3'), 'colo.v1.evt.{host}.{gpu}.status'],
    [subjects.hostLifecycle('h-1'), 'colo.v1.evt.{host}.lifecycle'],
    [subjects.fleetPlan(), 'colo.v1.evt.fleet.plan'],
  ];
  for (const [subject, template] of cases) assert.equal(subjectTemplate(subject), template, subject);
  assert.equal(subjectTemplate('_INBOX.abc.1'), undefined);
  assert.equal(messagingSpanName('send', subjects.gpuCommand('h-1', 'gpu3')), 'send colo.v1.{host}.{gpu}.cmd');
  assert.equal(messagingSpanName('send', '_INBOX.abc.1'), 'send _INBOX.abc.1', 'off the tree: the subject itself');
});

test('conventions - server.address and server.port from the NATS server the runner talks to', () => {
  try {
    setMessagingServer('nats://user:secret@10.1.2.3:4333,nats://10.1.2.4:4222');
    const a = messagingAttributes(subjects.gpuCommand('h', 'g'), 'send', 'send');
    assert.equal(a['server.address'], '10.1.2.3');
    assert.equal(a['server.port'], 4333);
    assert.equal(a['messaging.destination.template'], 'colo.v1.{host}.{gpu}.cmd');
    assert.ok(!JSON.stringify(a).includes('secret'), 'credentials in the URL stay out');
    setMessagingServer('nats.example');
    assert.equal(messagingAttributes('x', 'send', 'send')['server.port'], 4222, 'the NATS default port');
  } finally {
    setMessagingServer(undefined);
  }
  assert.equal(messagingAttributes('x', 'send', 'send')['server.address'], undefined);
});

test('conventions - the resource: ours, then the detectors, with OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME winning', async () => {
  const saved = { attrs: process.env.OTEL_RESOURCE_ATTRIBUTES, name: process.env.OTEL_SERVICE_NAME };
  try {
    delete process.env.OTEL_SERVICE_NAME;
    process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=bar';
    const all = telemetryResource('gpucolo-host', { serviceInstanceId: 'h1', env: {} });
    await all.waitForAsyncAttributes?.();
    const a = all.attributes;
    assert.equal(a['service.name'], 'gpucolo-host');
    assert.equal(a['service.instance.id'], 'h1');
    assert.match(String(a['service.version']), /^\d+\.\d+\.\d+/);
    assert.equal(a['host.name'], hostname());
    assert.equal(a['deployment.environment.name'], 'bar');
    assert.equal(a['telemetry.sdk.language'], 'nodejs');
    assert.equal(typeof a['process.pid'], 'number');
    assert.equal(a['process.command_args'], undefined, 'no command line: it may hold --password');

    process.env.OTEL_RESOURCE_ATTRIBUTES = 'service.instance.id=rack-7';
    process.env.OTEL_SERVICE_NAME = 'colo-staging';
    const over = telemetryResource('gpucolo-host', { serviceInstanceId: 'h1', env: { OTEL_NODE_RESOURCE_DETECTORS: 'env' } }).attributes;
    assert.equal(over['service.instance.id'], 'rack-7', 'the operator\'s attributes win');
    assert.equal(over['service.name'], 'colo-staging');
    assert.equal(over['host.name'], undefined, 'only the detectors named run');

    const none = telemetryResource('gpucolo-fleet', { serviceInstanceId: 'f1', env: { OTEL_NODE_RESOURCE_DETECTORS: 'none' } }).attributes;
    assert.equal(none['service.name'], 'gpucolo-fleet');
    assert.equal(none['service.instance.id'], 'f1');
  } finally {
    if (saved.attrs === undefined) delete process.env.OTEL_RESOURCE_ATTRIBUTES; else process.env.OTEL_RESOURCE_ATTRIBUTES = saved.attrs;
    if (saved.name === undefined) delete process.env.OTEL_SERVICE_NAME; else process.env.OTEL_SERVICE_NAME = saved.name;
  }
});

test('conventions - OTEL_EXPORTER_PROMETHEUS_PORT is honoured; a bad one warns and falls back to 9464', () => {
  assert.deepEqual(prometheusEndpoint({ OTEL_EXPORTER_PROMETHEUS_PORT: '9470', OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1' }), { host: '127.0.0.1', port: 9470 });
  assert.deepEqual(prometheusEndpoint({}), { host: '0.0.0.0', port: 9464 });
  const warnings: string[] = [];
  assert.deepEqual(prometheusEndpoint({ OTEL_EXPORTER_PROMETHEUS_PORT: 'ninety' }, (m) => warnings.push(m)), { host: '0.0.0.0', port: 9464 });
  assert.match(warnings[0]!, /OTEL_EXPORTER_PROMETHEUS_PORT must be a port number 1-65535, got "ninety"/);
});
