import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PLAN, QUICK_PLAN, fitProfile, makePlan, runCalibration, simPlant, type CalibrationPlan } from '../../gpu/calibrate/index.ts';
import { loadProfile, parseProfile } from '../../gpu/model/index.ts';
import { barErrors, errPct, hiddenProfile, tempDir, writeProfile } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'gpucolo.mjs');
const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

async function calibrate(profile: ReturnType<typeof hiddenProfile>, plan: CalibrationPlan, seed = 1) {
  const m = await runCalibration(simPlant(profile, { batch: plan.batch, seed }), { ...plan, pollMs: 10 });
  return { m, fit: fitProfile(m, { name: 'fit', how: 'test', inferenceModel: 'i', trainingModel: 't' }) };
}

test('calibrate (sim) - recovers the parameters of eight plants it is not told, default and quick plans, within the bar', async () => {
  const worst: Record<string, number> = {};
  for (let seed = 1; seed <= 8; seed++) {
    const hidden = hiddenProfile(seed, seed % 3 === 0);
    for (const plan of [DEFAULT_PLAN, QUICK_PLAN]) {
      const { m, fit } = await calibrate(hidden, plan, seed);
      const p = fit.profile;
      const what = `${hidden.name}, ${plan === QUICK_PLAN ? 'quick' : 'default'} plan`;
      assert.deepEqual(m.skipped, [], `${what}: nothing skipped`);
      assert.ok(m.deviceMs < (plan === QUICK_PLAN ? 5 : 30) * 60_000, `${what}: ${(m.deviceMs / 60000).toFixed(1)} min of device time`);
      for (const [k, e] of Object.entries(barErrors(p, hidden))) {
        worst[k] = Math.max(worst[k] ?? 0, Math.abs(e));
        assert.ok(Math.abs(e) < 15, `${what}: ${k} off by ${e.toFixed(1)}%`);
      }
      assert.ok(Math.abs(errPct(p.inference.fixedMs, hidden.inference.fixedMs)) < 10, `${what}: fixedMs ${p.inference.fixedMs} vs ${hidden.inference.fixedMs}`);
      assert.ok(Math.abs(errPct(p.inference.perItemMs, hidden.inference.perItemMs)) < 10, `${what}: perItemMs ${p.inference.perItemMs} vs ${hidden.inference.perItemMs}`);
      assert.ok(Math.abs(errPct(p.inference.jitterSigma, hidden.inference.jitterSigma)) < 15, `${what}: jitterSigma ${p.inference.jitterSigma} vs ${hidden.inference.jitterSigma}`);
      assert.ok(Math.abs(p.training.slowdownWhileInferring - hidden.training.slowdownWhileInferring) < 0.02, `${what}: slowdown ${p.training.slowdownWhileInferring} vs ${hidden.training.slowdownWhileInferring}`);
      if (hidden.interference.tailProb) {
        assert.ok(Math.abs(errPct(p.interference.tailProb!, hidden.interference.tailProb)) < 35, `${what}: tailProb ${p.interference.tailProb} vs ${hidden.interference.tailProb}`);
        assert.ok(Math.abs(errPct(p.interference.tailFactor!, hidden.interference.tailFactor!)) < 25, `${what}: tailFactor ${p.interference.tailFactor} vs ${hidden.interference.tailFactor}`);
      } else {
        assert.equal(p.interference.tailProb, 0, `${what}: no tail invented`);
      }
      // Every measured point is printed against the fitted one; on its own model the fit is close everywhere.
      assert.ok(fit.points.length >= 20);
      const bad = fit.points.filter((x) => Math.abs(x.errorPct) > 10 && x.kind !== 'latency noise');
      assert.deepEqual(bad, [], `${what}: points off by more than 10%`);
      // What calibrate does not measure is not copied from the hidden plant: it is the base profile's, marked assumed.
      assert.equal(p.interference.timeSlicing, loadProfile('rtx3090-resnet50-wrn101').interference.timeSlicing);
      assert.match(p.provenance!.assumed!['/interference/timeSlicing']!, /under MPS/);
      assert.match(p.provenance!.measured!['/gpu/memoryMiB'] ?? '', /memory the device reports/, `${what}: the memory size has its provenance`);
    }
  }
  console.log(`worst |error| over 8 hidden plants x 2 plans: ${Object.entries(worst).map(([k, v]) => `${k} ${v.toFixed(2)}%`).join(', ')}`);
});

test('calibrate --backend sim:1 --profile FILE --out FIT.json - a plant not in the repository, from the command line', () => {
  const dir = tempDir('cal');
  const hidden = hiddenProfile(42, true);
  const file = writeProfile(dir, hidden);
  const out = join(dir, 'fit.json');
  const r = cli(['calibrate', '--backend', 'sim:1', '--profile', file, '--out', out, '--name', 'hidden-fit', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const fit = parseProfile(JSON.parse(readFileSync(out, 'utf8')), out);
  assert.equal(fit.name, 'hidden-fit');
  assert.equal(loadProfile(out).training.iterAloneMs, fit.training.iterAloneMs, 'the written file loads as a profile');
  for (const [k, e] of Object.entries(barErrors(fit, hidden))) assert.ok(Math.abs(e) < 15, `${k} off by ${e.toFixed(1)}%`);
  assert.equal(summary.parameters.mpsRestartMs, fit.mpsRestartMs);
  assert.ok(summary.deviceMs < 30 * 60_000 && summary.deviceMs > 5 * 60_000, `${summary.deviceMs} ms of simulated time`);
  assert.ok(summary.points.some((p: { kind: string }) => p.kind === 'restart'));
  // The table is on stderr with --json: measured, fitted and error per point.
  assert.match(r.stderr, /what\s+setting\s+measured\s+fitted\s+error/);
  assert.match(r.stderr, /next to training\s+share 60%, duty 0\.5, mean\s+[\d.]+ ms\s+[\d.]+ ms\s+[+-][\d.]+%/);
  assert.match(fit.source, /Measured by gpucolo calibrate --backend sim:1/);
  assert.match(fit.provenance!.measured!['/interference/mpsAt100Pct']!, /power law/);

  const quick = cli(['calibrate', '--backend', 'sim:1', '--profile', file, '--out', join(dir, 'quick.json'), '--quick', '--json']);
  assert.equal(quick.status, 0, quick.stderr);
  const q = JSON.parse(quick.stdout.trim().split('\n').pop()!);
  assert.ok(q.deviceMs < 5 * 60_000, `--quick: ${q.deviceMs} ms`);
  assert.ok(Math.abs(errPct(q.parameters.mpsAt100Pct, hidden.interference.mpsAt100Pct)) < 15);
});

test('calibrate - a service of one batch size: one size measured, perItemMs 0 and said so', async () => {
  const hidden = hiddenProfile(11);
  const plant = simPlant(hidden, { batch: 6 });
  plant.batchSweep = false;
  plant.fixedBatch = 6;
  const m = await runCalibration(plant, { ...QUICK_PLAN, pollMs: 10 });
  assert.deepEqual(m.alone.map((a) => a.batch), [6]);
  assert.ok(m.coloc.every((c) => c.batch === 6));
  const fit = fitProfile(m, { name: 'one-size', how: 'test', inferenceModel: 'i', trainingModel: 't' });
  assert.equal(fit.profile.inference.perItemMs, 0);
  assert.ok(Math.abs(errPct(fit.profile.inference.fixedMs, hidden.inference.fixedMs + 6 * hidden.inference.perItemMs)) < 3);
  assert.match(fit.notes.join(' '), /batch sweep not run/);
  assert.match(fit.profile.provenance!.assumed!['/inference/perItemMs']!, /one batch size/);
  for (const [k, e] of Object.entries(barErrors(fit.profile, hidden))) assert.ok(Math.abs(e) < 15, `${k} off by ${e.toFixed(1)}%`);
});

test('calibrate --backend sim:1 --workloads FILE - the profile and the batch come from a workloads file', () => {
  const dir = tempDir('calw');
  writeProfile(dir, hiddenProfile(5));
  const w = join(dir, 'w.json');
  writeFileSync(w, JSON.stringify({ profile: 'hidden-5.json', perGpu: { services: [{ id: 's', sloMs: 20, batch: 3, rateRps: 10 }], trainings: [{ id: 't' }] } }));
  const r = cli(['calibrate', '--backend', 'sim:1', '--workloads', w, '--quick', '--out', join(dir, 'fit.json'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /latency noise\s+batch 3 alone/);
  assert.equal(JSON.parse(readFileSync(join(dir, 'fit.json'), 'utf8')).experiments.calibrate.inferenceBatch, 3);
});

test('calibrate - a budget that runs out skips the rest, says what, and still fits what it has', async () => {
  const hidden = hiddenProfile(7);
  const plan = makePlan(DEFAULT_PLAN, { budgetMs: 5 * 60_000 });
  const { m, fit } = await calibrate(hidden, plan);
  assert.ok(m.skipped.length > 0 && m.skipped.some((s) => s.startsWith('training alone')), m.skipped.join('; '));
  // A step starts only within the budget: the overrun is at most one step (a restart and its windows).
  assert.ok(m.deviceMs < plan.budgetMs + hidden.mpsRestartMs + 4 * (plan.settleMs + plan.colocWindowMs) + 5000, `${m.deviceMs} ms`);
  assert.match(fit.profile.source, /Skipped \(budget\)/);
});

test('calibrate - bad flags and plans exit 2 and say what to fix; --help lists the options', () => {
  const dir = tempDir('calf');
  const cases: [string[], RegExp][] = [
    [['calibrate', '--out', 'x.json'], /--backend is required: nvidia .* or sim:1/],
    [['calibrate', '--backend', 'sim:1', '--profile', 'rtx3090-resnet50-wrn101'], /--out FILE is required/],
    [['calibrate', '--backend', 'sim:2', '--out', 'x.json'], /calibrate measures one GPU: use --backend sim:1/],
    [['calibrate', '--backend', 'tpu', '--out', 'x.json'], /--backend must be nvidia or sim:1, got "tpu"/],
    [['calibrate', '--backend', 'sim:1', '--out', 'x.json'], /--backend sim:1 needs --profile/],
    [['calibrate', '--backend', 'sim:1', '--profile', 'nope', '--out', 'x.json'], /--profile: unknown GPU model profile "nope"/],
    [['calibrate', '--backend', 'nvidia', '--out', 'x.json'], /--backend nvidia needs --workloads FILE/],
    [['calibrate', '--backend', 'nvidia', '--profile', 'x', '--out', 'x.json'], /--profile is for --backend sim:1/],
    [['calibrate', '--backend', 'sim:1', '--profile', 'rtx3090-resnet50-wrn101', '--out', 'x.json', '--batch', '0'], /--batch must be >= 1/],
    [['calibrate', '--backend', 'sim:1', '--profile', 'rtx3090-resnet50-wrn101', '--out', 'x.json', '--plan', join(dir, 'missing.json')], /cannot read --plan/],
  ];
  writeFileSync(join(dir, 'bad-plan.json'), JSON.stringify({ shares: [50], colocWindowMs: -1 }));
  cases.push([['calibrate', '--backend', 'sim:1', '--profile', 'rtx3090-resnet50-wrn101', '--out', 'x.json', '--plan', join(dir, 'bad-plan.json')], /--plan .*bad-plan\.json is invalid: \/shares/]);
  writeFileSync(join(dir, 'no-zero.json'), JSON.stringify({ duties: [0.5] }));
  cases.push([['calibrate', '--backend', 'sim:1', '--profile', 'rtx3090-resnet50-wrn101', '--out', 'x.json', '--plan', join(dir, 'no-zero.json')], /\/duties must include 0/]);
  for (const [args, want] of cases) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    assert.match(r.stderr, want, args.join(' '));
  }
  const help = cli(['calibrate', '--help']);
  assert.equal(help.status, 0);
  for (const flag of ['--backend', '--workloads', '--profile', '--out', '--quick', '--plan', '--json']) assert.ok(help.stdout.includes(flag), flag);
});
