import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../../bus/index.ts';
import { SCHEMA_VERSION, subjects, type GpuStatusEvent } from '../../schemas/index.ts';
import { closedPort } from '../observability/helpers.ts';
import { scrapeUntil, startCli } from '../observability/scrape.ts';
import { useNats } from '../support/nats.ts';

const server = useNats();

/** A GPU whose one service fills it past the packing line: no plan can move it anywhere. */
function busyGpu(gpu: string): GpuStatusEvent {
  return {
    v: SCHEMA_VERSION, type: 'gpu.status', host: 'fm', gpu, tMs: performance.now(), unixMs: Date.now(), policy: 'gpucolo', state: 'controlling',
    services: [{ serviceId: `s-${gpu}`, sloMs: 25, p99Ms: 12, meanMs: 4, rateRps: 200, runP99Ms: 12, sloWindows: 10, sloWindowsMet: 10 }],
    trainings: [], mpsSharePct: 100, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: false, mpsChanges: 0, sleepChanges: 0,
  };
}

test('fleet metrics - every plan the leading fleet makes sets gpus-in-use and gpus-freed, a plan that moves nothing too', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'fleet-metrics-test', host: 'fm' });
  let plansWithMoves = 0;
  bus.subscribe<'fleet.plan'>(subjects.fleetPlan(), () => { plansWithMoves++; });
  const pump = setInterval(() => { for (const g of ['gpu0', 'gpu1']) bus.publish(subjects.gpuStatus('fm', g), busyGpu(g)); }, 100);
  const port = await closedPort();
  // 10x: the fleet's 10 s warm-up and its 1 s plan period take a tenth of that on the wall.
  const fleet = startCli(['fleet', '--fleet-id', 'fm', '--speed', '10', '--plan-period', '1'], {
    NATS_URL: server.url, OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: String(port), OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
  });
  try {
    await fleet.waitFor(new RegExp(`metrics: http://127\\.0\\.0\\.1:${port}/metrics`));
    const s = await scrapeUntil(`http://127.0.0.1:${port}/metrics`, (x) => x.families.has('gpucolo_fleet_gpus_in_use') && x.families.has('gpucolo_fleet_gpus_freed'));
    const inUse = s.samples.find((x) => x.name === 'gpucolo_fleet_gpus_in_use');
    const freed = s.samples.find((x) => x.name === 'gpucolo_fleet_gpus_freed');
    assert.ok(inUse && freed, `the fleet serves both gauges: ${fleet.stderr().slice(-1500)}`);
    assert.equal(s.families.get('gpucolo_fleet_gpus_in_use'), 'gauge');
    assert.equal(inUse.value, 2, 'both GPUs stay in use');
    assert.equal(freed.value, 0, 'none freed');
    assert.equal(plansWithMoves, 0, 'no plan moved anything: the gauges come from the planning round itself, not from a published plan');
  } finally {
    clearInterval(pump);
    fleet.child.kill('SIGTERM');
    assert.equal(await fleet.exited, 0, fleet.stderr().slice(-2000));
    await bus.close();
  }
});
