import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  GpuModel,
  ProfileError,
  iterationMs,
  listProfiles,
  MEASURED_PROFILES,
  plantFamily,
  loadProfile,
  parseProfile,
  serviceMs,
  trainingInterference,
  type GpuProfile,
  type TrainingOptions,
} from '../../gpu/model/index.ts';

const PROFILE = 'rtx3090-resnet50-wrn101';

test('gpu model profiles - the built-in profiles load and say where their numbers come from', () => {
  assert.ok(listProfiles().includes(PROFILE));
  for (const name of listProfiles()) {
    const p = loadProfile(name);
    assert.equal(p.name, name);
    assert.ok(p.source.length > 40, `${name} documents its source`);
  }
});

test('gpu model profiles - an unknown name lists the known ones', () => {
  assert.throws(() => loadProfile('a100-nope'), (e: unknown) => e instanceof ProfileError && listProfiles().every((n) => e.message.includes(n)));
});

/** Every number a profile sets outside its documented experiments, as JSON pointers. */
function numberPointers(json: unknown, at = ''): string[] {
  if (typeof json === 'number') return [at];
  if (json === null || typeof json !== 'object') return [];
  return Object.entries(json).flatMap(([k, v]) => (at === '' && (k === 'experiments' || k === 'provenance') ? [] : numberPointers(v, `${at}/${k}`)));
}

test('gpu model profiles - every built-in says of each number whether it is measured, derived or assumed', () => {
  const names = listProfiles();
  assert.ok(names.length >= 9, names.join(', '));
  for (const name of names) {
    const p = loadProfile(name);
    const listed = Object.values(p.provenance ?? {}).flatMap((entries) => Object.keys(entries ?? {}));
    assert.deepEqual([...listed].sort(), numberPointers(p).sort(), `${name}: provenance lists each number exactly once`);
    assert.ok(Object.values(p.provenance ?? {}).every((entries) => Object.values(entries ?? {}).every((why) => why.length > 10)), `${name}: each entry says why`);
  }
  // Only the H200 plant is not from the calibrated RTX 3090 profile, and it says so.
  assert.match(loadProfile('h200-resnet50-wrn101').source, /NOT MEASURED/);
  for (const name of names.filter((n) => n.startsWith(`${PROFILE}-`))) assert.match(loadProfile(name).source, new RegExp(`^Variant of ${PROFILE}`));
});

test('gpu model profiles - provenance must point at numbers the profile sets, once', () => {
  const p = loadProfile(PROFILE) as GpuProfile & { provenance: Record<string, Record<string, string>> };
  const typo = structuredClone(p);
  typo.provenance['assumed']!['/training/shareExponentt'] = 'typo';
  assert.throws(() => parseProfile(typo, 'typo.json'), (e: unknown) => e instanceof ProfileError && e.field === '/provenance/assumed/training/shareExponentt');
  const twice = structuredClone(p);
  twice.provenance['assumed']!['/interference/mpsAt100Pct'] = 'also assumed?';
  assert.throws(() => parseProfile(twice), (e: unknown) => e instanceof ProfileError && /already listed as measured/.test(e.message));
});

test('gpu model profiles - a profile file loads by path, relative to the working directory or absolute', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-profile-'));
  try {
    const mine = { ...loadProfile(PROFILE), name: 'my-lab-3090' };
    mine.interference.mpsAt100Pct = 2.5;
    const file = join(dir, 'lab.json');
    writeFileSync(file, JSON.stringify(mine));
    for (const path of [file, relative(process.cwd(), file)]) {
      const p = loadProfile(path);
      assert.equal(p.name, 'my-lab-3090', 'results name the profile by its name field');
      assert.equal(p.interference.mpsAt100Pct, 2.5);
    }
    // Anything ending in .json is a file, even without a '/'.
    assert.throws(() => loadProfile('nowhere.json'), (e: unknown) => e instanceof ProfileError && /cannot read GPU model profile file nowhere\.json/.test(e.message));
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"name": ');
    assert.throws(() => loadProfile(broken), (e: unknown) => e instanceof ProfileError && e.message.includes(broken) && /is not JSON/.test(e.message));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...mine, interference: { ...mine.interference, tailProb: 2 } }));
    assert.throws(
      () => loadProfile(bad),
      (e: unknown) => e instanceof ProfileError && e.field === '/interference/tailProb' && e.message.startsWith(`profile file ${bad}: invalid field /interference/tailProb`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The calibrated profile without any field added after it was first fitted (a profile file written for that code). */
function withoutNewFields(p: GpuProfile): GpuProfile {
  const old = structuredClone(p) as unknown as Record<string, Record<string, unknown>>;
  delete old['inference']!['mpsShareExponent'];
  delete old['interference']!['tailProb'];
  delete old['interference']!['tailFactor'];
  delete (old as Record<string, unknown>)['inferenceRestartMs'];
  delete (old as Record<string, unknown>)['provenance'];
  return parseProfile(old);
}

test('gpu model profiles - a profile without the new fields gives bit-identical results to the defaults written out', () => {
  const explicit = loadProfile(PROFILE);
  assert.equal(explicit.inference.mpsShareExponent, 0.85);
  assert.equal(explicit.interference.tailProb, 0);
  assert.equal(explicit.interference.tailFactor, 1);
  assert.equal(explicit.inferenceRestartMs, explicit.mpsRestartMs);
  const run = (profile: GpuProfile) => {
    const m = new GpuModel({
      profile, seed: 9,
      services: [{ id: 'a', batch: 6, rateRps: 40 }, { id: 'b', batch: 2, rateRps: 1000, arrival: 'closed' }],
      trainings: [{ id: 't', mpsSharePct: 60, pacing: { mode: 'duty', duty: 0.4, periodMs: 50 } }, { id: 'u', mpsSharePct: 30, pacing: { mode: 'per-iteration', sleepMs: 200 } }],
    });
    m.advanceTo(10_000);
    m.setMpsShare('t', 35);
    m.setPacing('u', { mode: 'duty', duty: 0.9, periodMs: 100 });
    m.advanceTo(25_000);
    m.setInferenceShare(80);
    m.advanceTo(40_000);
    const a = m.takeCompletions('a').completions;
    const b = m.takeCompletions('b').completions;
    return { a, b, t: m.trainingProgress('t'), u: m.trainingProgress('u') };
  };
  const old = run(withoutNewFields(explicit));
  assert.ok(old.a.length > 300 && old.b.length > 300, `${old.a.length} and ${old.b.length} completions`);
  assert.deepEqual(old, run(explicit));
});

test('gpu model profiles - an invalid profile names the bad field', () => {
  const bad = structuredClone(loadProfile(PROFILE)) as unknown as { interference: { mpsAt100Pct: unknown } };
  bad.interference.mpsAt100Pct = 'lots';
  assert.throws(
    () => parseProfile(bad, 'my.json'),
    (e: unknown) => e instanceof ProfileError && e.field === '/interference/mpsAt100Pct' && e.message.startsWith('my.json: invalid field /interference/mpsAt100Pct'),
  );
  const missing = structuredClone(loadProfile(PROFILE)) as unknown as { training: Record<string, unknown> };
  delete missing.training['iterAloneMs'];
  assert.throws(() => parseProfile(missing), (e: unknown) => e instanceof ProfileError && e.field === '/training/iterAloneMs');
});

test('gpu model profiles - loadProfile returns a private copy', () => {
  const a = loadProfile(PROFILE);
  a.inference.fixedMs = 999;
  assert.notEqual(loadProfile(PROFILE).inference.fixedMs, 999);
});

test('gpu model profiles - the RTX 3090 physics is plausible and monotone', () => {
  const p = loadProfile(PROFILE);
  // The paper's iterations: 0.4-0.8 s over the shares it uses.
  for (const share of [20, 40, 60, 80]) {
    const ms = iterationMs(p, share, true);
    assert.ok(ms >= 399 && ms <= 801, `iteration at ${share}%: ${ms} ms`);
  }
  const ts = iterationMs(p, 100, false);
  assert.ok(ts >= 400 && ts <= 800, `time-slicing iteration ${ts} ms`);
  for (let share = 10; share <= 100; share += 10) {
    assert.ok(trainingInterference(p, share, true) > trainingInterference(p, share - 5, true));
    assert.ok(iterationMs(p, share, true) < iterationMs(p, share - 5, true));
  }
  // The testbed: batch 105-115 alone clearly under the 90 ms SLO; at an 80% training share clearly over it.
  for (const batch of [105, 110, 115]) {
    assert.ok(serviceMs(p, batch) > 50 && serviceMs(p, batch) < 70);
    assert.ok(serviceMs(p, batch) * (1 + trainingInterference(p, 80, true)) > 90);
  }
});

/** One service at a moderate closed-loop load (20 batches/s of 6) next to one training job, for 60 s. */
function measure(profile: GpuProfile, training: Omit<TrainingOptions, 'id'>, seconds = 60) {
  const m = new GpuModel({ profile, seed: 4, services: [{ id: 'inf', batch: 6, rateRps: 20, arrival: 'closed' }], trainings: [{ id: 'job', ...training }] });
  m.advanceTo(seconds * 1000);
  const lat = m.takeCompletions('inf').completions.map((c) => c.latencyMs).sort((x, y) => x - y);
  const mean = lat.reduce((x, y) => x + y, 0) / lat.length;
  const p99 = lat[Math.ceil(0.99 * lat.length) - 1]!;
  return { mean, p99, tailRatio: p99 / mean, itersPerSec: m.trainingProgress('job') / seconds };
}

test('gpu model profiles - each member of the family behaves as its name says', () => {
  const awake = (name: string, sharePct = 100) => measure(loadProfile(name), { mpsSharePct: sharePct });
  const alone = (name: string) => measure(loadProfile(name), { running: false });
  const base = { awake: awake(PROFILE), half: awake(PROFILE, 50), alone: alone(PROFILE) };
  // The synthetic family; a measured profile (h200-resnet50-measured: I(100%) 0.30) says what its GPU did.
  assert.deepEqual(listProfiles().filter((n) => !plantFamily().includes(n)), [...MEASURED_PROFILES]);
  for (const name of plantFamily()) {
    const a = awake(name), o = alone(name);
    assert.ok(a.mean > 1.3 * o.mean, `${name}: training slows inference (${a.mean.toFixed(2)} vs ${o.mean.toFixed(2)} ms)`);
    assert.ok(a.itersPerSec > 0 && o.itersPerSec === 0, `${name}: training progresses only while running`);
  }
  // The base: tight tails alone and next to training (lognormal jitter only).
  assert.ok(base.alone.tailRatio < 1.2 && base.awake.tailRatio < 1.2, `base p99/mean ${base.alone.tailRatio.toFixed(2)} / ${base.awake.tailRatio.toFixed(2)}`);

  // trainexp1: training at a 25% share markedly slower than the base's (linear, not square-root, in the share).
  const exp1 = awake(`${PROFILE}-trainexp1`, 25).itersPerSec, baseAt25 = awake(PROFILE, 25).itersPerSec;
  assert.ok(exp1 < 0.65 * baseAt25, `trainexp1 at 25%: ${exp1.toFixed(3)} it/s vs base ${baseAt25.toFixed(3)}`);
  assert.ok(Math.abs(awake(`${PROFILE}-trainexp1`, 80).itersPerSec / awake(PROFILE, 80).itersPerSec - 1) < 0.02, 'trainexp1 keeps the base\'s 80%-share iteration');

  // jitter15: wider tails from noise alone, the same means.
  const j = { awake: awake(`${PROFILE}-jitter15`), alone: alone(`${PROFILE}-jitter15`) };
  assert.ok(j.alone.tailRatio > base.alone.tailRatio + 0.2, `jitter15 alone p99/mean ${j.alone.tailRatio.toFixed(2)}`);
  assert.ok(Math.abs(j.alone.mean / base.alone.mean - 1) < 0.03 && Math.abs(j.awake.mean / base.awake.mean - 1) < 0.03, 'jitter15 keeps the means');

  // gentle and steep: inference next to uncapped training slowed about 1.5x and 9x (base about 4x).
  const slowdown = (name: string) => awake(name).mean / alone(name).mean;
  assert.ok(slowdown(`${PROFILE}-gentle`) < 1.6, `gentle ${slowdown(`${PROFILE}-gentle`).toFixed(2)}`);
  assert.ok(slowdown(PROFILE) > 3.5 && slowdown(PROFILE) < 4.5, `base ${slowdown(PROFILE).toFixed(2)}`);
  assert.ok(slowdown(`${PROFILE}-steep`) > 8, `steep ${slowdown(`${PROFILE}-steep`).toFixed(2)}`);

  // heavytail: next to training p99/mean 3-5, far above the base's; alone and on average the base.
  const h = { awake: awake(`${PROFILE}-heavytail`), half: awake(`${PROFILE}-heavytail`, 50), alone: alone(`${PROFILE}-heavytail`) };
  assert.ok(h.awake.tailRatio > 3 && h.awake.tailRatio < 5.5, `heavytail p99/mean at 100%: ${h.awake.tailRatio.toFixed(2)}`);
  assert.ok(h.half.tailRatio > 2.5 * base.half.tailRatio, `heavytail p99/mean at 50%: ${h.half.tailRatio.toFixed(2)} vs base ${base.half.tailRatio.toFixed(2)}`);
  assert.ok(Math.abs(h.alone.tailRatio - base.alone.tailRatio) < 0.05, 'alone, heavytail has the base\'s tails');
  assert.ok(Math.abs(h.awake.mean / base.awake.mean - 1) < 0.05, `heavytail keeps the co-located mean (${h.awake.mean.toFixed(2)} vs ${base.awake.mean.toFixed(2)} ms)`);

  // h200: several times faster than the RTX 3090 at the same work, alone and training.
  const h200 = { awake: awake('h200-resnet50-wrn101'), alone: alone('h200-resnet50-wrn101') };
  assert.ok(h200.alone.mean < base.alone.mean / 2 && h200.awake.itersPerSec > 4 * base.awake.itersPerSec, `h200: ${h200.alone.mean.toFixed(2)} ms, ${h200.awake.itersPerSec.toFixed(2)} it/s`);
});

test('gpu model profiles - restart5s and restart15s restart training and inference for 5 s and 15 s', () => {
  for (const [name, restartMs] of [[`${PROFILE}-restart5s`, 5_000], [PROFILE, 7_000], [`${PROFILE}-restart15s`, 15_000]] as const) {
    const m = new GpuModel({ profile: loadProfile(name), services: [{ id: 'inf', batch: 6, rateRps: 20 }], trainings: [{ id: 'job', mpsSharePct: 50 }] });
    m.advanceTo(1_000);
    m.setMpsShare('job', 40);
    m.setInferenceShare(70);
    m.advanceTo(1_000 + restartMs - 1);
    assert.equal(m.trainingPhase('job'), 'restarting', name);
    assert.equal(m.inferenceRestarting, true, name);
    m.advanceTo(1_000 + restartMs);
    assert.equal(m.trainingPhase('job'), 'awake', name);
    assert.equal(m.inferenceRestarting, false, name);
  }
});
