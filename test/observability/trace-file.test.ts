import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { Bus } from '../../bus/index.ts';
import { explain } from '../../observability/explain.ts';
import { setupTelemetry, shutdownTelemetry } from '../../observability/setup.ts';
import { fleetPlanSpan } from '../../observability/spans.ts';
import { parseTraceFile, readTraceFile, type SpanRecord } from '../../observability/trace-file.ts';
import { scaledClock } from '../../actors/clock.ts';
import { startHost } from '../../runners/host/host.ts';
import { DEFAULT_WORKLOADS } from '../../runners/host/workloads.ts';
import { subjects } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';
import { sleep } from '../support/wait.ts';
import { runCli } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'gpucolo-tracefile-'));
const traceFile = join(dir, 'host.jsonl');
let spans: SpanRecord[] = [];
let knobChanges = 0;

const server = useNats();
before(() => { setupTelemetry('gpucolo-test-host', { traceFile, env: {} }); });

test('trace file - a host run and a fleet plan written as JSON lines: decisions with inputs, links, children; one trace across the plan and the GPU', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'tf', host: 'tf' });
  const host = await startHost({ hostId: 'tf', gpus: 2, workloads: DEFAULT_WORKLOADS, clock: scaledClock(20), bus, seed: 5 });
  try {
    const deviceS = () => host.devices[0]!.now() / 1000;
    while (deviceS() < 20) await sleep(50);
    // A fleet plan (the helper a fleet actor uses) sends a GPU command in its context.
    const plan = fleetPlanSpan({ planId: 'plan-1', gpusTotal: 2, gpusInUse: 1, gpusFreed: 1, targets: ['tf/gpu1'], actions: 1, reason: 'consolidate: tf/gpu0 takes both jobs' });
    const reply = await bus.request<'gpu.command'>(subjects.gpuCommand('tf', 'gpu0'), { type: 'gpu.command', action: 'set-slo', sloMs: 30 }, { ctx: trace.setSpan(context.active(), plan) });
    plan.end();
    assert.equal(reply.ok, true);
    while (deviceS() < 40) await sleep(50);
  } finally {
    await host.stop();
    knobChanges = host.gpuActors.reduce((a, g) => a + g.getSnapshot().context.mpsChanges + g.getSnapshot().context.sleepChanges, 0);
    await bus.close();
    await shutdownTelemetry();
  }

  const text = readFileSync(traceFile, 'utf8');
  const lines = text.trim().split('\n');
  assert.ok(lines.every((l) => (JSON.parse(l) as { v: number }).v === 1), 'every line is one JSON span record');
  const file = parseTraceFile(text);
  assert.equal(file.malformed, 0);
  spans = file.spans;
  const byId = new Map(spans.map((s) => [s.spanId, s]));

  const decisions = spans.filter((s) => s.name.startsWith('gpucolo.decision.'));
  assert.equal(decisions.length, knobChanges, 'one decision span per knob change the actors counted');
  for (const d of decisions.filter((s) => s.name === 'gpucolo.decision.inner')) {
    assert.equal(typeof d.attributes['gpucolo.input.p99_ms'], 'number');
    assert.equal(typeof d.attributes['gpucolo.input.rate_rps'], 'number');
    assert.equal(typeof d.attributes['gpucolo.term.measuredMs'], 'number');
    assert.ok(String(d.attributes['gpucolo.reason']).length > 0);
    assert.ok(d.links.length > 0 && d.links.every((l) => byId.get(l.spanId)?.name === 'publish colo.v1.{host}.{gpu}.inf.{service}.window'), 'links to the windows it consumed');
  }
  const statuses = spans.filter((s) => s.name === 'gpucolo.gpu.status');
  assert.ok(statuses.length >= 2 * 10, `status spans per status period per GPU (${statuses.length})`);
  assert.deepEqual(statuses[0]!.attributes['gpucolo.services'], ['resnet50']);

  // The plan, the command's handling in the host, and the SLO the next decisions steer to.
  const planSpan = spans.find((s) => s.name === 'gpucolo.fleet.plan')!;
  const handled = spans.find((s) => s.name === 'process colo.v1.{host}.{gpu}.cmd' && s.parentSpanId === planSpan.spanId);
  assert.ok(handled, 'the GPU command was handled as a child of the plan');
  assert.equal(handled.traceId, planSpan.traceId);
  assert.equal(handled.attributes['messaging.destination.name'], 'colo.v1.tf.gpu0.cmd');
  const later = statuses.filter((d) => d.attributes['gpucolo.gpu'] === 'gpu0' && d.startUnixMs > handled.endUnixMs + 200);
  assert.ok(later.length > 0 && later.every((d) => (d.attributes['gpucolo.service.slo_ms'] as number[])[0] === 30), 'the GPU reports the SLO the plan set');

  // explain: every change, the plan on both GPUs it touched (named target, and same trace).
  const e = explain(spans);
  assert.deepEqual(e.gpus.map((g) => g.gpu), ['tf/gpu0', 'tf/gpu1']);
  assert.equal(e.gpus.reduce((a, g) => a + g.changes.length, 0), knobChanges);
  for (const g of e.gpus) assert.deepEqual(g.fleetPlans.map((p) => p.planId), ['plan-1'], `${g.gpu} shows the plan`);
  const allGpu0 = e.gpus[0]!.changes;
  assert.ok(allGpu0.length >= 3);
  // Strictly after the first change and before the last one.
  const from = allGpu0[0]!.deviceMs! + 0.5;
  const to = allGpu0[allGpu0.length - 1]!.deviceMs! - 0.5;
  const c = explain(spans, { gpu: 'tf/gpu0', since: { kind: 'device', ms: from }, until: { kind: 'device', ms: to } }).gpus[0]!.changes;
  assert.ok(c.length > 0 && c.length <= allGpu0.length - 2, `${c.length} of ${allGpu0.length} changes in [${from}, ${to}] ms`);
  assert.ok(c.every((x) => x.deviceMs! >= from && x.deviceMs! <= to));
});

test('trace file - malformed lines are skipped and counted', () => {
  const before = readTraceFile(traceFile).spans.length;
  appendFileSync(traceFile, 'not json at all\n{"v":1,"name":"no ids"}\n{"traceId":"ab", "trunc');
  const t = readTraceFile(traceFile);
  assert.equal(t.spans.length, before);
  assert.equal(t.malformed, 3);
});

test('explain - the CLI prints one line per knob change, filters by GPU and time, and says what is wrong with bad input', async () => {
  const all = await runCli(['explain', traceFile]);
  assert.equal(all.code, 0, all.stderr);
  const changeLine = /^ {2}\d\d:\d\d:\d\d\.\d{3} +t=[\d.]+s +(inner|outer|safety) +(pacing|mpsSharePct|trainingRunning) \S+ -> \S+ +.+/;
  assert.equal(all.stdout.split('\n').filter((l) => changeLine.test(l)).length, knobChanges);
  assert.match(all.stdout, /^ {2}\S+ +t=[\d.]+s +inner +pacing [\d.]+ -> [\d.]+ +p99 [\d.]+ ms (>|<=) target [\d.]+ ms \(SLO 25 ms, resnet50, \d+ rps\): \S/m);
  assert.match(all.stdout, /fleet +plan plan-1: 1 of 2 GPUs in use, 1 freed: consolidate/);
  assert.match(all.stderr, /skipped 3 malformed line\(s\)/);

  const one = await runCli(['explain', traceFile, '--gpu', 'tf/gpu1', '--since', '5s', '--json']);
  assert.equal(one.code, 0, one.stderr);
  const json = JSON.parse(one.stdout.trim().split('\n').at(-1)!) as { malformed: number; gpus: { gpu: string; changes: { deviceMs: number }[]; fleetPlans: { planId: string }[] }[] };
  assert.equal(json.malformed, 3);
  assert.deepEqual(json.gpus.map((g) => g.gpu), ['tf/gpu1']);
  assert.ok(json.gpus[0]!.changes.every((c) => c.deviceMs >= 5000));
  assert.equal(json.gpus[0]!.fleetPlans[0]!.planId, 'plan-1');

  const bad = await runCli(['explain', traceFile, '--since', 'yesterday']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--since must be an ISO date-time .* or a device time such as 40s/);
  const missing = await runCli(['explain', join(dir, 'nope.jsonl')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /trace file .*nope\.jsonl does not exist/);
});

test('report - one self-contained HTML file; in headless Chromium it loads without console errors and every chart draws', async (t) => {
  const out = join(dir, 'report.html');
  const r = await runCli(['report', traceFile, '-o', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { charts: number; gpus: number };
  assert.equal(summary.gpus, 2);
  assert.equal(summary.charts, 2 * 4 + 1);
  const html = readFileSync(out, 'utf8');
  assert.doesNotMatch(html, /<(link|img|iframe)\b|\bsrc=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'nothing to fetch');

  const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    t.skip(`Chromium not found at ${chromium}: install it (make install does: apt-get install chromium) or set CHROMIUM_PATH`);
    return;
  }
  const { chromium: launcher } = await import('playwright-core');
  const browser = await launcher.launch({ executablePath: chromium, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    const fetched: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('request', (req) => { if (!req.url().startsWith('file:')) fetched.push(req.url()); });
    await page.goto(`file://${out}`, { waitUntil: 'load' });
    const charts = await page.$$eval('.chart', (els) => els.map((e) => {
      const paths = [...e.querySelectorAll('svg path.series')] as SVGPathElement[];
      return {
        id: e.id,
        drawn: e.getAttribute('data-drawn'),
        paths: paths.length,
        segments: Math.min(...paths.map((p) => (p.getAttribute('d') ?? '').split(/[LHV]/).length)),
        width: Math.min(...paths.map((p) => p.getBBox().width)),
      };
    }));
    assert.deepEqual(problems, [], 'no console errors');
    assert.deepEqual(fetched, [], 'no network requests');
    assert.equal(charts.length, summary.charts);
    for (const c of charts) {
      assert.ok(Number(c.drawn) >= 1 && c.paths === Number(c.drawn), `chart ${c.id} drew ${c.drawn} series`);
      assert.ok(c.segments >= 2 && c.width > 50, `chart ${c.id} has lines across it (${c.segments} points, ${c.width} px)`);
    }
    assert.ok(charts.find((c) => c.id === 'g0-latency')!.paths === 2, 'p99 and SLO');
    assert.equal(await page.getAttribute('body', 'data-charts-drawn'), String(summary.charts));
  } finally {
    await browser.close();
  }
});
