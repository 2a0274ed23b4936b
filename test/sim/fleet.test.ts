import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BURST_DAYS, buildWorkload, FirstFit, INFERENCE, replicaCapacity, Settler, FleetDataError, loadFleetData, DEFAULT_FLEET_DATA_DIR, simulateFleet, FLEET_DATA_FILES, fastestFirst, matchedSweep, DEFAULT_PACK_LINE, FLEET_POLICIES, runFleet, runFleetParallel } from '../../sim/index.ts';
import { simFleetCommand } from '../../cli/sim-command.ts';
import { UsageError } from '../../cli/errors.ts';
import { loadProfile, Rng } from '../../gpu/model/index.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
const tmp = mkdtempSync(join(tmpdir(), 'gpucolo-sim-'));
const data = loadFleetData();

test('sim data - the vendored files load: the v2020 fleet is 6,742 GPUs of five types', () => {
  assert.equal(data.gpuTypes.reduce((s, t) => s + t.gpus, 0), 6742);
  assert.deepEqual(data.gpuTypes.map((t) => t.type).sort(), ['MISC', 'P100', 'T4', 'V100', 'V100M32']);
  assert.equal(data.dlrm.length, 7386);
  assert.ok(data.servegen.clients.length > 100 && data.servegen.tS.length === 2016);
});

test('sim data - a missing folder, a missing file or a bad row says which file and what to fix', () => {
  assert.throws(() => loadFleetData(join(tmp, 'nope')), (e: Error) => e instanceof FleetDataError && /not a folder/.test(e.message));
  const copy = join(tmp, 'copy');
  cpSync(DEFAULT_FLEET_DATA_DIR, copy, { recursive: true });
  const file = join(copy, FLEET_DATA_FILES.dlrm);
  writeFileSync(file, readFileSync(file, 'utf8').replace('\n0,1,,\n', '\n0,x,,\n'));
  assert.throws(() => loadFleetData(copy), /dlrm-gpu-instances\.csv: row \d+, column gpus: expected a number/);
  writeFileSync(file, 'instance,app\n1,2\n');
  assert.throws(() => loadFleetData(copy), /header must start with app,gpus,creation_s,deletion_s/);
});

test('sim workload - seeded, 3:1 inference:training at the start, inference doubled on the burst days', () => {
  const a = buildWorkload(data, { days: BURST_DAYS[0] + 2, seed: 3 });
  const b = buildWorkload(data, { days: BURST_DAYS[0] + 2, seed: 3 });
  assert.deepEqual(a.trainings.workS.slice(0, 50), b.trainings.workS.slice(0, 50));
  const alive = (t: number) => { let n = 0; for (let i = 0; i < a.services.app.length; i++) if (a.services.start[i]! <= t && a.services.end[i]! > t) n++; return n; };
  const atStart = alive(0);
  const initialJobs = a.initialJobs;
  assert.ok(Math.abs(atStart / initialJobs - 3) < 0.01, `${atStart} services, ${initialJobs} jobs`);
  const perDay = 86400 / a.stepS;
  const before = alive(BURST_DAYS[0] * perDay - 1), during = alive(BURST_DAYS[0] * perDay + 1);
  assert.ok(during > 1.9 * before && during < 2.1 * before, `${before} -> ${during}`);
  const other = buildWorkload(data, { days: 2, seed: 4 });
  assert.notDeepEqual(other.trainings.workS.slice(0, 50), a.trainings.workS.slice(0, 50));
});

test('sim fleet - two days: one workload per GPU without co-location; co-location needs fewer GPUs', () => {
  const w = buildWorkload(data, { days: 2, seed: 1 });
  const none = simulateFleet(w, 'no-colocation');
  // One GPU per replica and per job; a service runs ceil(load / one GPU's capacity at the SLO) replicas.
  const speeds = w.types.map((t) => t.speed);
  const perReplica = replicaCapacity(new Settler('alone', { profile: loadProfile('rtx3090-resnet50-wrn101'), sloMs: INFERENCE.sloMs, batch: INFERENCE.batch }, speeds), speeds);
  let startReplicas = 0, startServices = 0;
  for (let s = 0; s < w.services.app.length; s++) {
    if (w.services.start[s] !== 0) continue;
    startServices++;
    startReplicas += Math.max(1, Math.ceil(w.appLoad[w.services.app[s]!]![0]! / perReplica - 1e-12));
  }
  const startJobs = w.trainings.arrival.filter((t) => t === 0).length;
  assert.ok(startReplicas > startServices);
  assert.equal(none.gpus[0], startReplicas + startJobs);
  const sep = simulateFleet(w, 'separate-5-1');
  assert.ok(sep.gpusMean >= none.gpusMean);
  const gslice = simulateFleet(w, 'gslice');
  const ours = simulateFleet(w, 'gpucolo');
  assert.ok(gslice.gpusMean < none.gpusMean && ours.gpusMean < none.gpusMean);
  for (const r of [none, sep, gslice, ours]) {
    assert.ok(r.sloViolationRate >= 0 && r.sloViolationRate <= 1);
    assert.equal(r.gpusDailyMean.length, 2);
    assert.ok(r.trainingJctMeanH > 0);
  }
  // Without co-location a service is alone on its GPU: it misses only when its own load does.
  assert.ok(ours.sloViolationRate <= none.sloViolationRate + 0.05, `gpucolo ${ours.sloViolationRate}, alone ${none.sloViolationRate}`);
  // A service past one GPU's capacity at the SLO runs replicas, so alone nothing misses; some services need them.
  assert.equal(none.sloViolationRate, 0);
  assert.ok(none.replicasPerService > 1, `replicas per service ${none.replicasPerService}`);
  assert.equal(ours.replicasPerService, none.replicasPerService);
  // gpucolo's own targets on the short run: violations <= 1.1%, training JCT within 10% of alone.
  assert.ok(ours.sloViolationRate <= 0.011, `gpucolo violations ${ours.sloViolationRate}`);
  assert.ok(ours.trainingJctMeanH <= 1.1 * none.trainingJctMeanH, `JCT ${ours.trainingJctMeanH} vs ${none.trainingJctMeanH}`);
});

test('sim fleet - the paper\'s law holds the MEAN latency: fewer service-steps miss by the mean than by the p99', () => {
  const w = buildWorkload(data, { days: 1, seed: 2 });
  const paper = simulateFleet(w, 'gpucolo-paper');
  assert.ok(paper.sloViolationRateMean < paper.sloViolationRate, `mean ${paper.sloViolationRateMean}, p99 ${paper.sloViolationRate}`);
  // Packed to 100% of mean utilisation, the p99 misses often; capped at a quarter of it, far less often.
  const capped = simulateFleet(w, 'gpucolo-paper', { packLine: 0.25 });
  assert.ok(capped.sloViolationRate < 0.25 * paper.sloViolationRate && capped.gpusMean > paper.gpusMean, `cap 0.25: ${capped.sloViolationRate} at ${capped.gpusMean} GPUs; cap 1: ${paper.sloViolationRate} at ${paper.gpusMean}`);
});

test('sim first fit - the index picks the same GPU as a scan in slot order, through updates and growth', () => {
  const rng = new Rng(5);
  const ff = new FirstFit(8);
  const a: number[] = [], b: number[] = [];
  for (let round = 0; round < 3000; round++) {
    const i = Math.floor(rng.next() * (round < 1500 ? 40 : 300));
    const va = rng.next() < 0.1 ? -Infinity : rng.next() < 0.05 ? Infinity : rng.next();
    const vb = rng.next() * 16;
    ff.set(i, va, vb);
    while (a.length <= i) { a.push(-Infinity); b.push(-Infinity); }
    a[i] = va; b[i] = vb;
    const needA = rng.next(), needB = rng.next() * 16, odd = rng.next() < 0.3;
    const check = odd ? (k: number) => k % 2 === 1 : undefined;
    const scan = a.findIndex((x, k) => x >= needA && b[k]! >= needB && (!check || check(k)));
    assert.equal(ff.find(needA, needB, check), scan, `round ${round}`);
  }
});

test('sim workload - claim-back looks only at yesterday: the packing peak is the trailing peak or yesterday\'s next hours', () => {
  const off = buildWorkload(data, { days: 3, seed: 1, peakWindowS: 3600, forecastS: 0 });
  const on = buildWorkload(data, { days: 3, seed: 1, peakWindowS: 3600, forecastS: 7200 });
  const day = 86400 / on.stepS, ahead = 7200 / on.stepS;
  let raised = 0;
  for (let a = 0; a < on.appLoad.length; a += 7) {
    const load = on.appLoad[a]!;
    for (let t = 0; t < on.steps; t++) {
      let want = off.appRecentPeak[a]![t]!;
      if (t - day + ahead >= 0) for (let k = t - day + 1; k <= t - day + ahead; k++) if (k >= 0) want = Math.max(want, load[k]!);
      assert.equal(on.appRecentPeak[a]![t], want, `app ${a} step ${t}`);
      if (want > off.appRecentPeak[a]![t]!) raised++;
    }
  }
  assert.ok(raised > 0);
});

test('sim fleet command - bad flags exit 2 and say what to fix; --json ends with the summary line', () => {
  let r = run(['sim', 'fleet', '--days', '0']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--days must be >= 1/);
  r = run(['sim', 'fleet', '--policy', 'best']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--policy must be all or one of no-colocation, separate-5-1, gslice, gpucolo-paper, gpucolo-no-moves, gpucolo/);
  r = run(['sim', 'fleet', '--data', join(tmp, 'missing'), '--days', '1']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not a folder; --data must name a folder/);
  const report = join(tmp, 'fleet.html');
  r = run(['sim', 'fleet', '--days', '1', '--policy', 'no-colocation', '--json', '--report', report]);
  assert.equal(r.status, 0, r.stderr);
  const last = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(last.days, 1);
  assert.deepEqual(Object.keys(last.policies), ['no-colocation']);
  for (const k of ['gpusDailyMean', 'gpusPeak', 'sloViolationRate', 'trainingJctMeanH']) assert.equal(typeof last.policies['no-colocation'][k], 'number', k);
  assert.equal(last.savingsVsNoColocation, null);
  assert.equal(last.slotOrder, 'fastest-first');
  assert.equal(last.policies['no-colocation'].slotOrder, 'fastest-first');
  assert.deepEqual(Object.keys(last.matched), ['0.011', '0.001']);
  assert.match(r.stderr, /COMPOSITE of real traces/);
  assert.match(readFileSync(report, 'utf8'), /<svg[^>]*>.*<polyline/s);
});

test('sim fleet - fastest-first powers on the fastest type with a slot left: a permutation of the trace, speed never rising', () => {
  const w = buildWorkload(data, { days: 1, seed: 1 });
  const order = fastestFirst(w);
  assert.equal(order.length, w.slotType.length);
  const count = (a: Uint8Array) => w.types.map((_, t) => a.filter((x) => x === t).length);
  assert.deepEqual(count(order), count(w.slotType));
  for (let i = 1; i < order.length; i++) assert.ok(w.types[order[i]!]!.speed <= w.types[order[i - 1]!]!.speed, `slot ${i}`);
  assert.equal(w.types[order[0]!]!.speed, Math.max(...w.types.map((t) => t.speed)));
});

test('sim fleet - gpucolo on the fastest GPUs first needs fewer GPUs and trains faster than in trace order, at its SLO', () => {
  const w = buildWorkload(data, { days: 2, seed: 1 });
  const fast = simulateFleet(w, 'gpucolo');
  const trace = simulateFleet(w, 'gpucolo', { slotOrder: 'trace' });
  assert.ok(fast.gpusMean < 0.9 * trace.gpusMean, `fastest-first ${fast.gpusMean}, trace order ${trace.gpusMean}`);
  assert.ok(fast.trainingJctMeanH < trace.trainingJctMeanH, `JCT ${fast.trainingJctMeanH} vs ${trace.trainingJctMeanH}`);
  assert.ok(fast.sloViolationRate <= 0.011, `violations ${fast.sloViolationRate}`);
  // A higher speed floor keeps more training on GPUs of its own.
  const strict = simulateFleet(w, 'gpucolo', { trainingMinSpeed: 0.9 });
  assert.ok(strict.gpusTrainingOnlyMean > fast.gpusTrainingOnlyMean, `training-only GPUs ${strict.gpusTrainingOnlyMean} vs ${fast.gpusTrainingOnlyMean}`);
});

test('sim fleet command - a bad slot order or start-up time is a usage error that says what to use', async () => {
  await assert.rejects(simFleetCommand({ days: '1', policy: 'gslice', seed: '1', slotOrder: 'slowest-first' }), (e: Error) => e instanceof UsageError && /--slot-order must be one of fastest-first, trace/.test(e.message));
  await assert.rejects(simFleetCommand({ days: '1', policy: 'gslice', seed: '1', moveStartupS: '-5' }), (e: Error) => e instanceof UsageError && /--move-startup-s must be >= 0/.test(e.message));
  assert.throws(() => simulateFleet(buildWorkload(data, { days: 1, seed: 1 }), 'gslice', { packLine: 1.5 }), /packing line must be in \(0, 1\]/);
});

test('sim fleet - one slot order for every policy of a run: each result carries it, and it changes what the baselines power on', () => {
  const w = buildWorkload(data, { days: 1, seed: 1 });
  const run = runFleet({ days: 1, seed: 1, policies: ['no-colocation', 'separate-5-1', 'gslice'], slotOrder: 'trace', matched: false });
  assert.deepEqual(run.results.map((r) => r.slotOrder), ['trace', 'trace', 'trace']);
  const fast = simulateFleet(w, 'gslice'), trace = simulateFleet(w, 'gslice', { slotOrder: 'trace' });
  assert.equal(fast.slotOrder, 'fastest-first');
  // On the fastest GPUs first a GPU holds more replicas under the same line: fewer GPUs.
  assert.ok(fast.gpusMean < trace.gpusMean, `fastest-first ${fast.gpusMean}, trace ${trace.gpusMean}`);
  // separate-5-1 follows the no-colocation run of its own slot order (the JCT depends on which GPUs train).
  const sepTrace = run.results.find((r) => r.policy === 'separate-5-1')!;
  assert.equal(sepTrace.trainingJctMeanH, run.results.find((r) => r.policy === 'no-colocation')!.trainingJctMeanH);
});

test('sim fleet - matched violations: lowering a baseline\'s packing line trades GPUs for violations; the best point within a bound is the fewest GPUs among the runs within it', () => {
  const w = buildWorkload(data, { days: 1, seed: 1 });
  const own = simulateFleet(w, 'gslice');
  assert.equal(own.packLine, DEFAULT_PACK_LINE.gslice);
  const sweep = matchedSweep(w, 'gslice', {}, own);
  assert.ok(sweep.runs.length >= 3);
  for (const bound of ['0.011', '0.001']) {
    const best = sweep.best[bound];
    if (!best) { assert.ok(sweep.runs.every((p) => p.result.sloViolationRate > Number(bound))); continue; }
    assert.ok(best.result.sloViolationRate <= Number(bound));
    for (const p of sweep.runs) if (p.result.sloViolationRate <= Number(bound)) assert.ok(p.result.gpusMean >= best.result.gpusMean);
  }
  const lowest = sweep.runs.reduce((a, b) => (a.packLine < b.packLine ? a : b));
  assert.ok(lowest.packLine < own.packLine!);
  assert.ok(lowest.result.gpusMean > own.gpusMean && lowest.result.sloViolationRate < own.sloViolationRate, `line ${lowest.packLine}: ${lowest.result.gpusMean} GPUs at ${lowest.result.sloViolationRate}; own ${own.gpusMean} at ${own.sloViolationRate}`);
});

test('sim fleet - moves are charged: a start-up holds GPUs, the longer the more; gpucolo-no-moves places the same way and moves nothing', () => {
  const w = buildWorkload(data, { days: 1, seed: 1 });
  const free = simulateFleet(w, 'gpucolo', { moveStartupS: 0 });
  const dflt = simulateFleet(w, 'gpucolo');
  const charged = simulateFleet(w, 'gpucolo', { moveStartupS: 600 });
  assert.ok(free.inferenceMoves > 0);
  assert.equal(dflt.moveStartupS, 60);
  assert.equal(charged.moveStartupS, 600);
  // GPUs held by a start-up: none when moves are free, more the longer a start-up lasts. (The total need
  // not rise with them: a start-up also slows training on the old GPU, which moves later placements.)
  assert.equal(free.gpusHeldByMovesMean, 0);
  assert.ok(dflt.gpusHeldByMovesMean > 0 && charged.gpusHeldByMovesMean > 2 * dflt.gpusHeldByMovesMean, `held: 60 s ${dflt.gpusHeldByMovesMean}, 600 s ${charged.gpusHeldByMovesMean}`);
  const serviceDays = free.serviceSteps * w.stepS / 86400;
  assert.ok(Math.abs(free.inferenceMovesPerServiceDay - free.inferenceMoves / serviceDays) <= 0.01 * free.inferenceMovesPerServiceDay + 1e-9);
  assert.ok(free.inferenceMovesMaxPerServiceDay >= 1);
  const none = simulateFleet(w, 'gpucolo-no-moves');
  assert.equal(none.inferenceMoves, 0);
  assert.equal(none.gpus[0], free.gpus[0]); // same placement before the planner's first move
});

test('sim fleet - worker threads give the same results as one thread', async () => {
  const o = { days: 1, seed: 3, policies: ['no-colocation', 'gslice', 'gpucolo-no-moves'] as const, matched: false };
  const one = runFleet({ ...o, policies: [...o.policies] });
  const two = await runFleetParallel({ ...o, policies: [...o.policies], workers: 2 });
  assert.deepEqual(two.results.map((r) => r.policy), [...o.policies]);
  for (let i = 0; i < one.results.length; i++) assert.equal(two.results[i]!.gpusMean, one.results[i]!.gpusMean);
  assert.ok(FLEET_POLICIES.includes('gpucolo-no-moves'));
});
