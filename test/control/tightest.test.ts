import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createGpucolo, pickTightest, smallestSlo, summarize } from '../../control/index.ts';
import type { LatencyWindow } from '../../control/index.ts';
import { between, defaultPlant, pacingOf, simulate, PER_WINDOW_GPUCOLO } from './plant.ts';

const win = (id: string, sloMs: number, over: Partial<LatencyWindow>): LatencyWindow => ({
  ...summarize(id, sloMs, [1], 1, 200),
  ...over,
});

test('control - tightest pick is the largest metric/SLO ratio', () => {
  const a = win('a', 50, { meanMs: 35, p99Ms: 40 }); // p99 0.8, mean 0.7
  const b = win('b', 100, { meanMs: 50, p99Ms: 90 }); // p99 0.9, mean 0.5
  assert.equal(pickTightest([a, b])?.service.serviceId, 'b');
  assert.equal(pickTightest([a, b], 'mean')?.service.serviceId, 'a');
  const pick = pickTightest([a, b])!;
  assert.equal(pick.measuredMs, 90);
  assert.equal(pick.ratio, 0.9);
});

test('control - tightest pick ignores empty windows and breaks ties on the smaller SLO', () => {
  const empty = win('e', 10, { count: 0, p99Ms: 0 });
  const a = win('a', 100, { p99Ms: 50 });
  const b = win('b', 60, { p99Ms: 30 });
  assert.equal(pickTightest([empty, a, b])?.service.serviceId, 'b');
  assert.equal(pickTightest([empty]), undefined);
  assert.equal(pickTightest([]), undefined);
  assert.equal(smallestSlo([a, empty, b])?.serviceId, 'e');
});

test('control - the tighter SLO drives the duty when two services share a GPU', () => {
  const spec = defaultPlant({
    k: 4,
    seed: 7,
    services: [
      { id: 'loose', sloMs: 200, baseMs: 20, loadCoef: 0.5, rate: () => 100 },
      { id: 'tight', sloMs: 50, baseMs: 10, loadCoef: 0.5, rate: () => 100 },
    ],
  });
  const policy = createGpucolo({ ...PER_WINDOW_GPUCOLO, initialSharePct: 100, initialDuty: 0 });
  const r = simulate(policy, spec, { durationMs: 60_000, innerOnly: true });
  const driven = r.decisions.filter((d) => d.knob === 'pacing');
  assert.ok(driven.length > 0);
  const byTight = driven.filter((d) => d.drivingServiceId === 'tight').length;
  assert.ok(byTight / driven.length > 0.9, `tight drove ${byTight}/${driven.length}`);

  const settled = between(r.ticks, 20_000, 60_000);
  const tight = settled.map((t) => t.windows.find((w) => w.serviceId === 'tight')!);
  const loose = settled.map((t) => t.windows.find((w) => w.serviceId === 'loose')!);
  const tightOk = tight.filter((w) => w.p99Ms <= 50).length / tight.length;
  assert.ok(tightOk >= 0.97, `tight SLO met in ${tightOk}`);
  // The tight service is the one closer to its SLO, so it is what binds, not the loose one.
  const ratioMean = (ws: { p99Ms: number; sloMs: number }[]) => ws.reduce((s, w) => s + w.p99Ms / w.sloMs, 0) / ws.length;
  assert.ok(ratioMean(tight) > 1.5 * ratioMean(loose), `p99/SLO: tight ${ratioMean(tight)}, loose ${ratioMean(loose)}`);
  assert.ok(loose.every((w) => w.p99Ms < 0.8 * 200), 'loose service has plenty of slack');
  // With only the loose service the duty would be far lower: the tight one is the reason it is high.
  const alone = simulate(createGpucolo({ ...PER_WINDOW_GPUCOLO, initialSharePct: 100, initialDuty: 0 }), { ...spec, services: [spec.services[0]!] }, {
    durationMs: 60_000,
    innerOnly: true,
  });
  const dutyTwo = pacingOf(settled.at(-1)!);
  const dutyAlone = pacingOf(alone.ticks.at(-1)!);
  assert.ok(dutyTwo > dutyAlone + 0.3, `duty with tight ${dutyTwo} vs alone ${dutyAlone}`);
});
