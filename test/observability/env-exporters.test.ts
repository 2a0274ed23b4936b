import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchSpanProcessor, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { exporterNames, metricReadersFromEnv, otlpProtocol, spanProcessorsFromEnv } from '../../observability/env-exporters.ts';

test('exporters - OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER choose exporters; unset means otlp only when an endpoint is configured', () => {
  assert.deepEqual(exporterNames({}, 'TRACES'), []);
  assert.deepEqual(exporterNames({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, 'TRACES'), ['otlp']);
  assert.deepEqual(exporterNames({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://c:4318/v1/metrics' }, 'TRACES'), []);
  assert.deepEqual(exporterNames({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://c:4318/v1/metrics' }, 'METRICS'), ['otlp']);
  assert.deepEqual(exporterNames({ OTEL_TRACES_EXPORTER: ' otlp, console ,otlp' }, 'TRACES'), ['otlp', 'console']);
  assert.deepEqual(exporterNames({ OTEL_TRACES_EXPORTER: 'otlp,none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, 'TRACES'), []);
  assert.deepEqual(exporterNames({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }, 'TRACES'), []);
  assert.deepEqual(exporterNames({ OTEL_METRICS_EXPORTER: 'prometheus' }, 'METRICS'), ['prometheus']);
});

test('exporters - the OTLP protocol: per signal, then general, default http/protobuf; an unknown one warns', () => {
  assert.equal(otlpProtocol({}, 'TRACES'), 'http/protobuf');
  assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, 'TRACES'), 'http/json');
  assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc' }, 'METRICS'), 'grpc');
  const warnings: string[] = [];
  assert.equal(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' }, 'TRACES', (m) => warnings.push(m)), 'http/protobuf');
  assert.match(warnings[0]!, /unsupported OTLP protocol "carrier-pigeon"/);
});

test('exporters - network exporters sit behind batch processors; console is synchronous; unknown names warn', async () => {
  for (const protocol of ['grpc', 'http/protobuf', 'http/json']) {
    const p = spanProcessorsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: protocol });
    assert.equal(p.length, 1);
    assert.ok(p[0] instanceof BatchSpanProcessor, `${protocol}: batched`);
    await p[0]!.shutdown();
  }
  const warnings: string[] = [];
  const p = spanProcessorsFromEnv({ OTEL_TRACES_EXPORTER: 'console,jaeger' }, (m) => warnings.push(m));
  assert.equal(p.length, 1);
  assert.ok(p[0] instanceof SimpleSpanProcessor);
  assert.match(warnings.join('\n'), /unsupported OTEL_TRACES_EXPORTER value "jaeger"/);
  const readers = metricReadersFromEnv({ OTEL_METRICS_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRIC_EXPORT_INTERVAL: '500' });
  assert.equal(readers.length, 1);
  assert.ok(readers[0] instanceof PeriodicExportingMetricReader);
  await readers[0]!.shutdown().catch(() => undefined);
});
