import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const RUN = join(ROOT, 'deploy', 'gpu-host', 'run.sh');
const BASH = spawnSync('bash', ['-c', 'command -v bash'], { encoding: 'utf8' }).stdout.trim();
const SUMMARIZE = join(ROOT, 'deploy', 'gpu-host', 'summarize.mjs');

const status = (tMs: number, p99: number, its: number, share: number, duty: number, attainment: number) => JSON.stringify({
  name: 'gpucolo.gpu.status', startUnixMs: 1e12 + tMs, attributes: {
    'gpucolo.device_ms': tMs, 'gpucolo.policy': 'gpucolo', 'gpucolo.services': ['svc', 'other'], 'gpucolo.service.p99_ms': [p99, 1],
    'gpucolo.service.slo_ms': [25, 100], 'gpucolo.training.its': its, 'gpucolo.mps_share_pct': share, 'gpucolo.sleep_duty': duty,
    'gpucolo.service.attainment': [attainment, 1],
  },
});

test('gpu host - summarize.mjs turns host trace files into one row per policy', () => {
  const dir = tempDir('ghs');
  const a = join(dir, 'a.jsonl');
  writeFileSync(a, [
    status(1000, 20, 2, 40, 0.5, 1), status(2000, 30, 4, 40, 0.25, 0.5), status(3000, 10, 6, 60, 0, 2 / 3),
    JSON.stringify({ name: 'gpucolo.decision.inner', attributes: {} }), JSON.stringify({ name: 'gpucolo.decision.outer', attributes: {} }),
    JSON.stringify({ name: 'gpucolo.decision.inner', attributes: {} }), 'not json',
  ].join('\n'));
  const r = spawnSync(process.execPath, [SUMMARIZE, `gpucolo=${a}`, `simple=${join(dir, 'missing.jsonl')}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.trim().split('\n');
  assert.match(rows[0]!, /^\| policy \| status periods \| p99 within SLO/);
  // The tightest service drives (svc at 20-30 ms of 25 beats other at 1 of 100): 2 of 3 periods within, median 20, max 30.
  assert.equal(rows[2], '| gpucolo | 3 | 66.7% | 66.7% | 20.00 / 30.00 | 25 | 4.00 | 47 | 0.25 | 2 / 1 / 0 |');
  assert.match(rows[3]!, /^\| simple \| no trace: ENOENT/);
  const bad = spawnSync(process.execPath, [SUMMARIZE, 'no-equals-sign'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /is not POLICY=FILE/);
});

test('gpu host - run.sh says what to fix: an unknown option, a bad number, a host without nvidia-smi', () => {
  // A PATH with only what the script needs before its GPU check, so the test means the same on a GPU machine.
  const bin = tempDir('ghb');
  for (const tool of ['dirname', 'sed']) symlinkSync(spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), join(bin, tool));
  const env = { ...process.env, PATH: bin };
  const unknown = spawnSync(BASH, [RUN, '--fast'], { encoding: 'utf8', env });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option --fast/);
  const seconds = spawnSync(BASH, [RUN, '--policy-seconds', 'ten'], { encoding: 'utf8', env });
  assert.equal(seconds.status, 2);
  assert.match(seconds.stderr, /--policy-seconds must be a whole number/);
  const help = spawnSync(BASH, [RUN, '--help'], { encoding: 'utf8', env });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--quick\s+calibrate --quick/);
  const noGpu = spawnSync(BASH, [RUN, '--skip-control'], { encoding: 'utf8', env });
  assert.equal(noGpu.status, 1);
  assert.match(noGpu.stderr, /nvidia-smi not found: this is not a GPU host/);
});
