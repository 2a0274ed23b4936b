import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ProfileError,
  iterationMs,
  listProfiles,
  loadProfile,
  parseProfile,
  serviceMs,
  trainingInterference,
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
  assert.throws(() => loadProfile('a100-nope'), (e: unknown) => e instanceof ProfileError && e.message.includes(PROFILE));
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
