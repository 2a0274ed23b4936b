import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTraceFile, type SpanRecord } from '../../observability/trace-file.ts';
import { useNats } from '../support/nats.ts';
import { blackhole, closedPort, runCli } from './helpers.ts';

const server = useNats();

const SPEED = 10;
const DURATION_S = 20;

/** Status spans of one GPU, by wall time: the control loop's heartbeat (one per device second). */
function heartbeat(spans: SpanRecord[], gpu: string): SpanRecord[] {
  return spans.filter((s) => s.name === 'gpucolo.gpu.status' && s.attributes['gpucolo.gpu'] === gpu).sort((a, b) => a.startUnixMs - b.startUnixMs);
}

async function hostRun(hostId: string, env: Record<string, string>) {
  const traceFile = join(mkdtempSync(join(tmpdir(), 'gpucolo-unreach-')), 'host.jsonl');
  const run = await runCli(['host', '--host-id', hostId, '--backend', 'sim:1', '--speed', String(SPEED), '--duration', String(DURATION_S), '--json', '--trace-file', traceFile], {
    NATS_URL: server.url, OTEL_METRICS_EXPORTER: 'none', ...env,
  });
  assert.equal(run.code, 0, run.stderr.slice(-2000));
  const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { gpus: { sleepChanges: number; mpsChanges: number }[] };
  const spans = readTraceFile(traceFile).spans;
  const beats = heartbeat(spans, 'gpu0');
  const wallGaps = beats.slice(1).map((s, i) => s.startUnixMs - beats[i]!.startUnixMs);
  const started = run.stderr.match(/(\S+) host \S+: started/)?.[1];
  const stopped = run.stderr.match(/(\S+) host \S+: stopped/)?.[1];
  return {
    run, summary, spans, beats, maxGapMs: Math.max(...wallGaps),
    decisions: spans.filter((s) => s.name.startsWith('gpucolo.decision.')).length,
    controlWallMs: started && stopped ? Date.parse(stopped) - Date.parse(started) : NaN,
    exitAfterStopMs: stopped ? run.exitUnixMs - Date.parse(stopped) : NaN,
  };
}

test('unreachable collector - OTLP to a closed port or a hanging server: the host decides on time and stops promptly', async () => {
  const port = await closedPort();
  const hang = await blackhole();
  try {
    // The same run with nothing exported: how many knob changes the controller makes when no exporter is in the way.
    const quiet = await hostRun('uq', { OTEL_TRACES_EXPORTER: 'none' });
    assert.ok(quiet.decisions >= 5, `without an exporter: ${quiet.decisions} decisions`);
    const runs = {
      closed: await hostRun('uc', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BSP_SCHEDULE_DELAY: '100' }),
      hanging: await hostRun('uh', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${hang.port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100' }),
    };
    assert.ok(hang.connections() > 0, 'the exporter did try the hanging collector');
    const expectedBeats = DURATION_S - 1;
    for (const [name, r] of Object.entries(runs)) {
      // Status periods keep coming at a steady wall cadence (100 ms at 10x): nothing stalled the loop.
      assert.ok(r.beats.length >= expectedBeats * 0.6, `${name}: ${r.beats.length} status periods of ${expectedBeats}`);
      assert.ok(r.maxGapMs < 1000, `${name}: longest wall gap between status periods ${r.maxGapMs} ms (expected ~${1000 / SPEED})`);
      // The controller kept deciding as it does with nothing exported (timing on a loaded machine moves it a little).
      assert.ok(r.decisions >= quiet.decisions / 2, `${name}: ${r.decisions} decisions, ${quiet.decisions} without an exporter`);
      assert.equal(r.decisions, r.summary.gpus[0]!.sleepChanges + r.summary.gpus[0]!.mpsChanges, `${name}: every knob change traced`);
      // Started to stopped is the run itself (2 s wall) plus the release: export never holds it up.
      assert.ok(r.controlWallMs < (DURATION_S * 1000) / SPEED + 1500, `${name}: control ran ${r.controlWallMs} ms`);
      // After stopping, the bounded telemetry shutdown (2 s), not the exporter's timeout and retries (10 s and more).
      assert.ok(r.exitAfterStopMs < 4500, `${name}: exited ${r.exitAfterStopMs} ms after stopping`);
    }
  } finally {
    await hang.close();
  }
});
