import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTraceFile } from '../../observability/trace-file.ts';
import { runCli, TestCollector } from './helpers.ts';

test('otlp - a demo exports decision spans over OTLP/HTTP JSON; demo and host spans of one command share a trace; explain counts every knob change', async () => {
  const collector = new TestCollector();
  await collector.start();
  const dir = mkdtempSync(join(tmpdir(), 'gpucolo-otlp-'));
  const traceFile = join(dir, 'run.jsonl');
  try {
    const run = await runCli(['demo', '--hosts', '2', '--gpus', '1', '--duration', '30', '--speed', '10', '--json', '--trace-file', traceFile], {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_METRIC_EXPORT_INTERVAL: '500',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      NATS_URL: undefined,
    });
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    assert.ok(collector.contentTypes.has('application/json'), `OTLP bodies were JSON: ${[...collector.contentTypes].join(', ')}`);

    // Decision spans with inputs, terms, old and new value, the rule, and links to the windows consumed.
    const decisions = collector.spans.filter((s) => s.name.startsWith('gpucolo.decision.'));
    assert.ok(decisions.length >= 20, `decision spans received: ${decisions.length}`);
    // service.name per role; the host id is the instance.
    assert.deepEqual([...new Set(decisions.map((s) => s.service))], ['gpucolo-host']);
    assert.deepEqual([...new Set(decisions.map((s) => s.instance))].sort(), ['host0', 'host1']);
    const inner = decisions.filter((s) => s.name === 'gpucolo.decision.inner');
    assert.ok(inner.length > 0);
    for (const d of inner) {
      for (const key of ['gpucolo.host', 'gpucolo.gpu', 'gpucolo.policy', 'gpucolo.knob', 'gpucolo.reason', 'gpucolo.term.measuredMs', 'gpucolo.term.targetMs',
        'gpucolo.input.p99_ms', 'gpucolo.input.p95_ms', 'gpucolo.input.rate_rps', 'gpucolo.input.slo_ms']) {
        assert.ok(d.attrs[key] !== undefined, `${d.name} has ${key}: ${JSON.stringify(d.attrs)}`);
      }
      assert.equal(typeof d.attrs['gpucolo.knob.old_value'], 'number');
      assert.equal(typeof d.attrs['gpucolo.knob.new_value'], 'number');
      assert.equal(d.attrs['gpucolo.input.slo_ms'], 25);
    }
    const byId = new Map(collector.spans.map((s) => [s.spanId, s]));
    const linked = inner.filter((d) => (d.links ?? []).some((l) => byId.get(l.spanId)?.name === 'publish colo.v1.{host}.{gpu}.inf.{service}.window'));
    assert.ok(linked.length >= inner.length * 0.9, `inner decisions link to the latency windows they consumed (${linked.length}/${inner.length})`);

    // Actuation: a child of its decision, named and described by the messaging conventions; handled as its
    // child in the host. (The first knobs at start and the release at stop are actuations without a decision: roots.)
    const actuations = collector.spans.filter((s) => s.name === 'send colo.v1.{host}.{gpu}.train.{job}.cmd' && s.attrs['gpucolo.action'] === 'set-pacing' && s.parentSpanId);
    const pacingDecisions = decisions.filter((d) => d.attrs['gpucolo.knob'] === 'pacing');
    const actuatedIds = new Set(actuations.map((a) => a.parentSpanId));
    assert.deepEqual(pacingDecisions.filter((d) => !actuatedIds.has(d.spanId)).map((d) => d.spanId), [], 'every pacing decision has its set-pacing child');
    for (const a of actuations) {
      const parent = byId.get(a.parentSpanId ?? '');
      assert.ok(parent?.name.startsWith('gpucolo.decision.'), `actuation's parent is a decision (${parent?.name})`);
      assert.equal(parent!.traceId, a.traceId);
      assert.equal(a.attrs['messaging.system.name'], 'nats');
      assert.equal(a.attrs['messaging.operation.type'], 'send');
      assert.equal(a.attrs['messaging.destination.template'], 'colo.v1.{host}.{gpu}.train.{job}.cmd');
      assert.equal(a.attrs['gpucolo.command.kind'], 'actuate');
      assert.equal(a.attrs['server.address'], '127.0.0.1', 'server.address: the NATS server the host talks to');
      assert.equal(typeof a.attrs['server.port'], 'number');
      assert.match(String(a.attrs['messaging.destination.name']), /^colo\.v1\.host[01]\.gpu0\.train\.(host[01]-)?wrn101\.cmd$/);
    }

    // Across processes: the demo's scale-rate command and its handling in a host runner share one trace.
    const commands = collector.spans.filter((s) => s.name === 'send colo.v1.{host}.{gpu}.inf.{service}.cmd' && s.attrs['gpucolo.action'] === 'scale-rate' && s.service === 'gpucolo-demo');
    assert.equal(commands.length, 20, 'burst ramped on and off in five steps each, two services');
    for (const c of commands) {
      const handled = collector.spans.find((s) => s.parentSpanId === c.spanId);
      assert.ok(handled, `command ${c.spanId} was handled`);
      assert.equal(handled.name, 'process colo.v1.{host}.{gpu}.inf.{service}.cmd');
      assert.equal(handled.attrs['gpucolo.message.type'], 'inference.command');
      assert.equal(handled.traceId, c.traceId);
      assert.equal(handled.service, 'gpucolo-host');
      assert.match(String(handled.instance), /^host[01]$/);
      assert.equal(handled.attrs['messaging.operation.type'], 'process');
    }

    for (const m of ['gpucolo.inference.latency_seconds', 'gpucolo.slo.attainment_ratio', 'gpucolo.training.sleep_duty_ratio', 'gpucolo.training.mps_share_percent', 'gpucolo.training.iterations_per_second', 'gpucolo.control.decisions']) {
      assert.ok(collector.metricNames.has(m), `metric ${m} exported (got ${[...collector.metricNames].join(', ')})`);
    }

    // The same run's trace file: every decision span the collector got, and explain prints one line each.
    const file = readTraceFile(traceFile);
    assert.equal(file.malformed, 0);
    const fileDecisions = file.spans.filter((s) => s.name.startsWith('gpucolo.decision.'));
    assert.equal(fileDecisions.length, decisions.length, 'trace file and collector hold the same decisions');
    const ex = await runCli(['explain', traceFile]);
    assert.equal(ex.code, 0, ex.stderr);
    const changeLines = ex.stdout.split('\n').filter((l) => /^ {2}\d\d:\d\d:\d\d\.\d{3} +t=[\d.]+s +(inner|outer|safety) /.test(l));
    assert.equal(changeLines.length, fileDecisions.length, 'one explain line per knob change');
    assert.match(ex.stdout, /^host0\/gpu0 {2}policy gpucolo: \d+ knob change/m);
  } finally {
    await collector.close();
  }
});
