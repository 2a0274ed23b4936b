import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fakeEnv, GPU2_UUID, STANDIN, tempDir } from '../nvidia/helpers.ts';
import { useNats } from '../support/nats.ts';
import { closedPort } from './helpers.ts';
import { deployQueries, familyOf, gpucoloNames, scrapeUntil, startCli } from './scrape.ts';

const server = useNats();

const VERSION = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

test('prometheus - a sim host runner serves seconds histograms, the resource in target_info, and every metric deploy/ queries', async () => {
  const port = await closedPort();
  const host = startCli(['host', '--host-id', 'pm', '--backend', 'sim:1', '--speed', '10', '--duration', '60'], {
    NATS_URL: server.url, OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=bar', OTEL_SERVICE_NAME: undefined,
  });
  try {
    await host.waitFor(new RegExp(`metrics: http://127\\.0\\.0\\.1:${port}/metrics`));
    const s = await scrapeUntil(`http://127.0.0.1:${port}/metrics`, (x) => x.families.has('gpucolo_control_decisions_total') && x.families.has('gpucolo_slo_attainment_ratio'));

    // Latency: a histogram in seconds, per service, with per-GPU labels to join on.
    assert.equal(s.families.get('gpucolo_inference_latency_seconds'), 'histogram', 'latency histogram named in seconds');
    const count = s.samples.find((x) => x.name === 'gpucolo_inference_latency_seconds_count' && x.labels.gpucolo_service === 'resnet50');
    const sum = s.samples.find((x) => x.name === 'gpucolo_inference_latency_seconds_sum' && x.labels.gpucolo_service === 'resnet50');
    assert.ok(count && sum && count.value > 100, 'requests were recorded');
    const meanS = sum.value / count.value;
    assert.ok(meanS > 0.001 && meanS < 0.1, `mean latency ${meanS} is in seconds (a ResNet-50 request takes milliseconds)`);
    assert.ok(s.samples.some((x) => x.name === 'gpucolo_inference_latency_seconds_bucket' && x.labels.le === '0.025'), 'a bucket at a 25 ms SLO, in seconds');
    assert.equal(count.labels.gpucolo_host, 'pm');
    assert.equal(count.labels.host_name, hostname(), 'host.name on per-GPU series');
    const slo = s.samples.find((x) => x.name === 'gpucolo_inference_slo_seconds');
    assert.equal(slo?.value, 0.025, 'the SLO gauge is in seconds');

    // No precomputed percentile, and every gpucolo name carries its unit or is a count/ratio.
    const gpucoloFamilies = [...s.families.keys()].filter((n) => n.startsWith('gpucolo_'));
    assert.deepEqual(gpucoloFamilies.filter((n) => /p\d\d|percentile|quantile/.test(n)), [], 'no percentile gauges');
    assert.deepEqual(gpucoloFamilies.filter((n) => /_ms\b|_ms_/.test(n)), [], 'no millisecond metrics');

    // The resource: the SDK's detectors, OTEL_RESOURCE_ATTRIBUTES, and ours.
    const info = s.samples.find((x) => x.name === 'target_info');
    assert.ok(info, 'target_info served');
    assert.equal(info.labels.deployment_environment_name, 'bar');
    assert.equal(info.labels.service_name, 'gpucolo-host', 'service.name is stable per role');
    assert.equal(info.labels.service_instance_id, 'pm', 'service.instance.id is the host id');
    assert.equal(info.labels.service_version, VERSION);
    assert.equal(info.labels.host_name, hostname());
    assert.equal(info.labels.process_command_args, undefined, 'the command line (it may hold --password) stays out');

    // Every gpucolo metric the dashboard and the alert rules query is in the scrape; every gpucolo label they use is a label here.
    const queries = deployQueries();
    assert.ok(queries.length >= 10, `${queries.length} queries in deploy/`);
    const metricsQueried = new Set<string>();
    for (const q of queries) {
      for (const name of gpucoloNames(q.expr)) {
        if (s.labelNames.has(name)) continue;
        const family = familyOf(name, s.families);
        assert.ok(family, `${q.where} queries ${name}, which the host runner does not serve`);
        metricsQueried.add(family);
      }
    }
    assert.ok(metricsQueried.size >= 8, `deploy/ queries ${[...metricsQueried].join(', ')}`);
  } finally {
    host.child.kill('SIGTERM');
    assert.equal(await host.exited, 0, host.stderr().slice(-2000));
  }
});

test('prometheus - gpucolo demo gives each process its own metrics port from OTEL_EXPORTER_PROMETHEUS_PORT up, and prints them', async () => {
  const base = await closedPort();
  const demo = startCli(['demo', '--hosts', '2', '--gpus', '1', '--duration', '60', '--speed', '10', '--fleets', '1'], {
    OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: String(base), OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
  });
  try {
    const line = (await demo.waitFor(/metrics \(prometheus\): (.*)\n/))[1]!;
    const urls = [...line.matchAll(/(\S+) (http:\/\/\S+\/metrics)/g)].map((m) => ({ who: m[1]!, url: m[2]!.replace(/,$/, '') }));
    assert.deepEqual(urls.map((u) => u.who), ['demo', 'host0', 'host1', 'demo-fleet0']);
    assert.deepEqual(urls.map((u) => Number(new URL(u.url).port)), [base, base + 1, base + 2, base + 3]);
    for (const u of urls.filter((x) => x.who.startsWith('host'))) {
      const s = await scrapeUntil(u.url, (x) => x.families.has('gpucolo_inference_latency_seconds'));
      const info = s.samples.find((x) => x.name === 'target_info');
      assert.equal(info?.labels.service_instance_id, u.who, `${u.url} is ${u.who}'s`);
      assert.ok(s.samples.some((x) => x.name === 'gpucolo_inference_latency_seconds_count' && x.labels.gpucolo_host === u.who), `${u.who} serves its own GPU's latency`);
    }
    const fleet = await scrapeUntil(urls[3]!.url, (x) => x.samples.some((y) => y.name === 'target_info'));
    assert.equal(fleet.samples.find((x) => x.name === 'target_info')?.labels.service_name, 'gpucolo-fleet');
    // Each host runner says where its metrics are, on the demo's stderr.
    await demo.waitFor(new RegExp(`\\[host1\\] \\S+ metrics: http://127\\.0\\.0\\.1:${base + 2}/metrics`));
  } finally {
    // The demo stops its processes itself when its run ends.
    assert.equal(await demo.exited, 0, demo.stderr().slice(-2000));
  }
});

test('prometheus - under the stand-in NVIDIA tools, per-GPU series carry the GPU UUID (joins with DCGM exporter) and the runner gets ready', async () => {
  const dir = tempDir('prom');
  const workloads = join(dir, 'workloads.yaml');
  const node = JSON.stringify(process.execPath);
  writeFileSync(workloads, `
gpus:
  - gpu: ${GPU2_UUID}
    services:
      - id: bert
        sloMs: 40
        command: [${node}, ${JSON.stringify(join(STANDIN, 'inference.mjs'))}]
        latency: { source: stdout }
    trainings:
      - id: train
        command: [${node}, ${JSON.stringify(join(STANDIN, 'training.mjs'))}]
        pacing: cooperative
`);
  const port = await closedPort();
  const env = fakeEnv({ NATS_URL: server.url, OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: String(port), OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1' });
  const host = startCli(['host', '--host-id', 'pn', '--backend', 'nvidia', '--workloads', workloads, '--state-dir', join(dir, 'state'), '--health-port', '127.0.0.1:0'], env);
  try {
    const health = (await host.waitFor(/health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/))[1]!;
    const s = await scrapeUntil(`http://127.0.0.1:${port}/metrics`, (x) => x.samples.some((y) => y.name === 'gpucolo_inference_latency_seconds_count' && y.value > 0) && x.families.has('gpucolo_training_mps_share_percent'), 40_000);
    const latency = s.samples.find((x) => x.name === 'gpucolo_inference_latency_seconds_count');
    assert.ok(latency, `latency served: ${host.stderr().slice(-1500)}`);
    assert.equal(latency.labels.gpu_uuid, GPU2_UUID);
    assert.equal(latency.labels.gpucolo_gpu, 'gpu0');
    assert.equal(s.samples.find((x) => x.name === 'gpucolo_training_mps_share_percent')?.labels.gpu_uuid, GPU2_UUID);
    assert.equal((await fetch(`${health}/readyz`)).status, 200);
  } finally {
    host.child.kill('SIGTERM');
    assert.equal(await host.exited, 0, host.stderr().slice(-2000));
  }
});
