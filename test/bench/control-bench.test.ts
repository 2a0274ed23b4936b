import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BENCH_POLICIES } from '../../bench/control/cell.ts';
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

test('bench - paper-burst, every policy side by side: ours holds the p99 SLO; oracle-static meets the floor and out-trains every fixed baseline that does', () => {
  const r = run(['bench', 'control', '--scenario', 'paper-burst', '--policy', 'all', '--json', '--out', dir]);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(last.scenario, 'paper-burst');
  assert.equal(last.profile, 'rtx3090-resnet50-wrn101');
  assert.equal(last.closedLoop, true, 'a closed-loop client: arrivals depend on the policy, and the JSON says so');
  assert.deepEqual(Object.keys(last.policies), [...BENCH_POLICIES]);
  for (const p of Object.values(last.policies) as Record<string, number>[]) {
    for (const k of ['attainmentP99', 'attainmentMean', 'trainingItersPerSec', 'inferenceRps', 'mpsRestarts', 'settleSecMax', 'gpus']) assert.equal(typeof p[k], 'number', k);
  }
  assert.equal(last.policies['no-colocation'].gpus, 2);
  assert.equal(last.policies.gpucolo.gpus, 1);
  const floor = last.floor;
  assert.ok(Math.abs(floor - Math.min(0.99, last.policies['no-colocation'].attainmentP99 - 0.005)) < 1e-3, `floor ${floor}`);
  const oracle = last.policies['oracle-static'];
  assert.ok(oracle.attainmentP99 >= floor, JSON.stringify(oracle));
  assert.ok(oracle.setting.mpsSharePct >= 5 && oracle.setting.mpsSharePct <= 100, JSON.stringify(oracle.setting));
  for (const fixed of ['simple', 'conservative']) {
    const f = last.policies[fixed];
    if (f.attainmentP99 >= floor) assert.ok(oracle.trainingItersPerSec >= f.trainingItersPerSec - 1e-9, `${fixed} ${JSON.stringify(f)} beats oracle-static`);
  }
  assert.ok(last.policies['oracle-dynamic'].trainingItersPerSec >= oracle.trainingItersPerSec - 1e-9, 'the upper bound is at least the best fixed setting');
  assert.ok(last.policies['gslice-tuned'].setting.marginPct >= 0, 'the tuned row says which margin it settled on');
  assert.ok(last.policies.gpucolo.attainmentP99 >= floor, JSON.stringify(last.policies.gpucolo));
  assert.ok(last.policies.gpucolo.settleSecMax <= 2);
  assert.ok(last.policies.simple.attainmentP99 < 0.5, 'a fixed even split breaks the SLO on this load');
  const svg = readFileSync(join(dir, 'control-paper-burst.svg'), 'utf8');
  assert.match(svg, /^<svg /);
  assert.equal((svg.match(/<path /g) ?? []).length, 4 * BENCH_POLICIES.length, 'four panels, one line per policy');
});

test('bench - --profile FILE: a plant that is not built in runs, and the JSON names it', () => {
  const profile = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'gpu', 'model', 'profiles', 'rtx3090-resnet50-wrn101.json'), 'utf8'));
  profile.name = 'held-out-plant';
  profile.interference.mpsAt100Pct = 5;
  profile.training.shareExponent = 0.8;
  profile.mpsRestartMs = 12_000;
  const f = join(dir, 'held-out.json');
  writeFileSync(f, JSON.stringify(profile));
  const r = run(['bench', 'control', '--scenario', 'rate-2x', '--profile', f, '--policy', 'gpucolo,oracle-static,no-colocation', '--json', '--out', 'none']);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(last.profile, 'held-out-plant');
  assert.deepEqual(Object.keys(last.policies), ['no-colocation', 'oracle-static', 'gpucolo']);
  assert.ok(last.policies['oracle-static'].attainmentP99 >= last.floor);
  writeFileSync(f, JSON.stringify({ ...profile, mpsRestartMs: -1 }));
  const bad = run(['bench', 'control', '--scenario', 'rate-2x', '--profile', f, '--policy', 'gpucolo']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /mpsRestartMs/);
});

test('bench - --seeds N: median and worst per metric over seeds 1..N', () => {
  const r = run(['bench', 'control', '--scenario', 'rate-2x', '--policy', 'conservative,no-colocation', '--seeds', '3', '--json', '--out', 'none']);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(last.seeds, [1, 2, 3]);
  const per = last.perSeed.map((c: { policies: Record<string, { attainmentP99: number; trainingItersPerSec: number }> }) => c.policies.conservative);
  const att = per.map((p: { attainmentP99: number }) => p.attainmentP99).sort((a: number, b: number) => a - b);
  assert.equal(last.summary.conservative.attainmentP99.worst, att[0]);
  assert.equal(last.summary.conservative.attainmentP99.median, att[1]);
  assert.ok(new Set(att).size > 1, 'seeds draw different arrivals');
});

test('bench - --matrix: loads x profiles x seeds on worker threads, one row per load x profile', () => {
  const f = join(dir, 'two-steps.csv');
  writeFileSync(f, 't_s,rate_rps\n0,100\n60,200\n120,100\n');
  const r = run(['bench', 'control', '--matrix', `flat-30,${f}`, '--profile', 'rtx3090-resnet50-wrn101', '--seeds', '2', '--workers', '2',
    '--policy', 'no-colocation,conservative,oracle-static,gpucolo', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.deepEqual(last.matrix.loads, ['flat-30', 'two-steps']);
  assert.equal(last.cells.length, 4);
  assert.equal(last.rows.length, 2);
  for (const row of last.rows) {
    const cells = last.cells.filter((c: { scenario: string }) => c.scenario === row.load);
    assert.equal(cells.length, 2);
    const atts = cells.map((c: { policies: { gpucolo: { attainmentP99: number } } }) => c.policies.gpucolo.attainmentP99);
    assert.ok(Math.abs(row.gpucolo.attWorst - Math.min(...atts)) < 1e-3, JSON.stringify(row));
    assert.equal(row.meetsFloor, cells.every((c: { floor: number; policies: { gpucolo: { attainmentP99: number } } }) => c.policies.gpucolo.attainmentP99 >= c.floor));
  }
  assert.equal(typeof last.summary.medianVsOracleStatic, 'number');
  assert.match(r.stderr, /load +profile +floor/);
  // Wall time reads differently from the build and from the sources: the line says which ran.
  assert.match(r.stderr, /^wall time \d+ s \(runtime: (build|source)\)$/m);
  const bad = run(['bench', 'control', '--matrix', '--scenario', 'rate-2x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--matrix runs its own loads/);
  const badLoad = run(['bench', 'control', '--matrix', 'nope']);
  assert.equal(badLoad.status, 2);
  assert.match(badLoad.stderr, /neither a load name/);
});

test('bench - --matrix --full-length: a curve longer than 20 minutes runs at its own length, the cell the single --load run scores', () => {
  // 30 minutes: the default matrix compresses it into 20.
  const f = join(dir, 'half-hour.csv');
  writeFileSync(f, `t_s,rate_rps\n${Array.from({ length: 6 }, (_, i) => `${i * 300},${i % 2 === 0 ? 100 : 200}`).join('\n')}\n`);
  const policies = ['--policy', 'no-colocation,gpucolo'];
  const json = (r: ReturnType<typeof run>) => { assert.equal(r.status, 0, r.stderr); return JSON.parse(r.stdout.trim().split('\n').at(-1)!); };
  const fullRun = run(['bench', 'control', '--matrix', f, '--full-length', '--profile', 'rtx3090-resnet50-wrn101', '--workers', '1', ...policies, '--json']);
  const full = json(fullRun);
  // No oracle-dynamic in this run: its ratio reads "-", not NaN.
  assert.match(fullRun.stderr, /median vs oracle-dynamic -/);
  const squeezed = json(run(['bench', 'control', '--matrix', f, '--profile', 'rtx3090-resnet50-wrn101', '--workers', '1', ...policies, '--json']));
  const single = json(run(['bench', 'control', '--scenario', 'rate-2x', '--load', f, '--seed', '1', ...policies, '--json', '--out', 'none']));
  const g = (c: { policies: Record<string, { windows: number; attainmentP99: number; trainingItersPerSec: number }> }) => c.policies.gpucolo!;
  assert.ok(g(full.cells[0]).windows > 1700, `${g(full.cells[0]).windows} scored seconds at full length`);
  assert.ok(g(squeezed.cells[0]).windows < 1200, `${g(squeezed.cells[0]).windows} scored seconds compressed`);
  // The same arrivals and the same scoring as the bar's single-load command.
  assert.equal(g(full.cells[0]).attainmentP99, single.policies.gpucolo.attainmentP99);
  assert.equal(g(full.cells[0]).trainingItersPerSec, single.policies.gpucolo.trainingItersPerSec);
  const bad = run(['bench', 'control', '--scenario', 'rate-2x', '--full-length']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--full-length applies to --matrix/);
  // An empty --out is refused before any run, not after them when the chart is written.
  const noOut = run(['bench', 'control', '--scenario', 'rate-2x', '--out', '']);
  assert.equal(noOut.status, 2);
  assert.match(noOut.stderr, /--out must be a directory for the chart, or none for no chart/);
  assert.equal(noOut.stdout, '', 'no table: nothing was run');
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
  const c = run(['bench', 'control', '--scenario', 'paper-burst', '--policy', 'gpucolo,fastest']);
  assert.equal(c.status, 2);
  assert.match(c.stderr, /--policy must be all or a comma-separated list of .*unknown: "fastest"/);
  const d = run(['bench', 'control', '--policy', 'gpucolo']);
  assert.equal(d.status, 2);
  assert.match(d.stderr, /--scenario must be one of/);
});
