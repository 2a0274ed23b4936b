import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSteps, meanRate, readLoadCsv, rescale, scenario, withLoad } from '../../bench/control/scenarios.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
const dir = mkdtempSync(join(tmpdir(), 'gpucolo-bench-'));

test('bench - load CSV: header, rescale to a mean, steps, clear errors', () => {
  const f = join(dir, 'curve.csv');
  writeFileSync(f, 't_s,rate_rps\n0,10\n30,30\n60,10\n');
  const c = readLoadCsv(f);
  assert.equal(c.endS, 90, 'the last rate is held for the median row spacing');
  assert.ok(Math.abs(meanRate(c) - 50 / 3) < 1e-9);
  assert.ok(Math.abs(meanRate(rescale(c, 100)) - 100) < 1e-9);
  const s = withLoad(scenario('rate-2x'), f, 120);
  assert.deepEqual(loadSteps(s), [30, 60]);
  assert.ok(Math.abs(s.schedule[1]!.rateRps - 216) < 1e-9);
  writeFileSync(f, 'time,rate\n0,1\n');
  assert.throws(() => readLoadCsv(f), /t_s and rate_rps/);
  writeFileSync(f, 't_s,rate_rps\n0,1\n0,2\n');
  assert.throws(() => readLoadCsv(f), /:3: t_s must increase/);
  writeFileSync(f, 't_s,rate_rps\n0,-1\n');
  assert.throws(() => readLoadCsv(f), /rate_rps must be a number >= 0/);
});

test('bench - paper-burst, every policy side by side: ours holds the p99 SLO and settles within 2 s', () => {
  const r = run(['bench', 'control', '--scenario', 'paper-burst', '--policy', 'all', '--json', '--out', dir]);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(last.scenario, 'paper-burst');
  assert.deepEqual(Object.keys(last.policies), ['no-colocation', 'simple', 'conservative', 'gslice', 'gpucolo-paper', 'gpucolo-paper-p99', 'gpucolo']);
  for (const p of Object.values(last.policies) as Record<string, number>[]) {
    for (const k of ['attainmentP99', 'attainmentMean', 'trainingItersPerSec', 'inferenceRps', 'mpsRestarts', 'settleSecMax', 'gpus']) assert.equal(typeof p[k], 'number', k);
  }
  assert.equal(last.policies['no-colocation'].gpus, 2);
  assert.equal(last.policies.gpucolo.gpus, 1);
  assert.ok(last.policies.gpucolo.attainmentP99 >= 0.99, JSON.stringify(last.policies.gpucolo));
  assert.ok(last.policies.gpucolo.settleSecMax <= 2);
  assert.ok(last.policies.simple.attainmentP99 < 0.5, 'a fixed even split breaks the SLO on this load');
  assert.ok(last.policies.gpucolo.trainingItersPerSec > last.policies['gpucolo-paper-p99'].trainingItersPerSec);
  const svg = readFileSync(join(dir, 'control-paper-burst.svg'), 'utf8');
  assert.match(svg, /^<svg /);
  assert.equal((svg.match(/<path /g) ?? []).length, 4 * 7, 'four panels, one line per policy');
});

test('bench - any --load file: ours holds the SLO where inference alone can', () => {
  const f = join(dir, 'spiky.csv');
  // A load this repository does not ship: quiet, a 3x spike, a ramp down.
  writeFileSync(f, 't_s,rate_rps\n0,50\n40,150\n70,60\n100,90\n130,40\n160,40\n');
  const r = run(['bench', 'control', '--scenario', 'rate-2x', '--policy', 'all', '--load', f, '--mean-rps', '140', '--json', '--out', 'none']);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  const alone = last.policies['no-colocation'].attainmentP99;
  assert.ok(alone < 0.99, 'the spike is past what inference alone can serve within the SLO in some seconds');
  assert.ok(last.policies.gpucolo.attainmentP99 >= Math.min(0.99, alone - 0.005), JSON.stringify(last.policies.gpucolo));
  assert.ok(last.policies.gpucolo.attainmentP99 > last.policies.gslice.attainmentP99);
  assert.ok(last.policies.gpucolo.settleSecMax <= 2);
  assert.ok(last.policies.gpucolo.trainingItersPerSec > 0.2);
});

test('bench - bad flags exit 2 and say what to fix', () => {
  const a = run(['bench', 'control', '--scenario', 'nope']);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /--scenario must be one of paper-burst, rate-2x, diurnal/);
  const b = run(['bench', 'control', '--scenario', 'rate-2x', '--load', join(dir, 'missing.csv')]);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /cannot read load file/);
  const c = run(['bench', 'control', '--scenario', 'paper-burst', '--policy', 'fastest']);
  assert.equal(c.status, 2);
  assert.match(c.stderr, /--policy must be all or one of/);
});
