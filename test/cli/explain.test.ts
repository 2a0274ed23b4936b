import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTR, SPAN } from '../../observability/spans.ts';
import type { SpanRecord } from '../../observability/trace-file.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');
const T0 = Date.parse('2026-11-25T09:00:00Z');
let n = 0;
function span(name: string, startUnixMs: number, attributes: SpanRecord['attributes'], traceId = 'a'.repeat(32)): SpanRecord {
  const id = (++n).toString(16).padStart(16, '0');
  return { v: 1, traceId, spanId: id, name, kind: 0, service: 'gpucolo-host', startUnixMs, endUnixMs: startUnixMs + 1, attributes, events: [], links: [], status: { code: 0 } } as SpanRecord;
}

test('explain - a fleet plan is placed on the device clock of a GPU that runs 10x faster than the wall', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpucolo-explain-'));
  const spans: SpanRecord[] = [];
  // A simulated GPU at --speed 10: a decision every 100 ms of wall time, 1 s of device time apart, for 12 s.
  for (let i = 0; i <= 120; i++) {
    spans.push(span(`${SPAN.decisionPrefix}inner`, T0 + i * 100, {
      [ATTR.host]: 'host0', [ATTR.gpu]: 'gpu0', [ATTR.policy]: 'gpucolo', [ATTR.deviceMs]: i * 1000,
      [ATTR.knob]: 'pacing', [ATTR.oldValue]: 0, [ATTR.newValue]: 0.1, [ATTR.reason]: 'p99 below target',
    }, (i + 1).toString(16).padStart(32, '0')));
  }
  // The plan: 1 s of wall time after the GPU started, so at device time 10 s.
  spans.push(span(SPAN.fleetPlan, T0 + 1000, { [ATTR.fleet.planId]: 'p1', [ATTR.fleet.targets]: ['host0/gpu0'], [ATTR.reason]: 'consolidate' }, 'f'.repeat(32)));
  const file = join(dir, 'run.jsonl');
  writeFileSync(file, spans.map((s) => JSON.stringify(s)).join('\n') + '\n');
  const r = spawnSync(process.execPath, [BIN, 'explain', file, '--gpu', 'host0/gpu0', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { gpus: Array<{ fleetPlans: Array<{ planId: string; deviceMs: number }> }> };
  const plan = out.gpus[0]!.fleetPlans.find((p) => p.planId === 'p1')!;
  assert.ok(Math.abs(plan.deviceMs - 10_000) < 1, `plan at device ${plan.deviceMs} ms, expected 10000`);
  const text = spawnSync(process.execPath, [BIN, 'explain', file, '--gpu', 'host0/gpu0', '--since', '9s', '--until', '11s'], { encoding: 'utf8' });
  assert.match(text.stdout, /t=10\.0s\s+fleet\s+plan p1/);
});
