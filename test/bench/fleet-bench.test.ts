import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { latencySummary } from '../../bench/index.ts';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 180_000, env: { ...process.env, ...env } });

test('bench fleet - --help names every flag; a bad flag exits 2 saying what to fix', () => {
  const help = run(['bench', 'fleet', '--help']);
  assert.equal(help.status, 0);
  for (const flag of ['--gpus', '--seconds', '--round-trips', '--json']) assert.match(help.stdout, new RegExp(flag));
  const cases: Array<[string[], RegExp]> = [
    [['--gpus', '0'], /--gpus must be >= 1, got 0/],
    [['--gpus', '2.5'], /--gpus must be an integer/],
    [['--seconds', 'x'], /--seconds must be a number, got "x"/],
    [['--round-trips', '5'], /--round-trips must be >= 10/],
    [['--bogus'], /unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = run(['bench', 'fleet', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('bench fleet - a small run: the fleet plans, round trips and the bare NATS floor are measured side by side, JSON as documented', () => {
  // From the sources, forced: the JSON says which code was timed.
  const r = run(['bench', 'fleet', '--gpus', '40', '--seconds', '1', '--round-trips', '20', '--json'], { GPUCOLO_RUN: 'source' });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    scale: Record<string, number>;
    roundTrip: { samples: number; p50Ms: number; p99Ms: number; maxMs: number; windows: number; inGc: number };
    natsFloor: { samples: number; p50Ms: number; p99Ms: number; inGc: number };
    p99OverFloor: number;
    gc: { pauses: number; meanMs: number; maxMs: number };
    runtime: string;
  };
  assert.equal(out.runtime, 'source');
  assert.match(r.stderr, /runtime: source/);
  assert.equal(out.scale.gpus, 40);
  assert.equal(out.scale.gpusKnown, 40, 'every simulated GPU in the fleet\'s view');
  assert.ok(out.scale.plannedRounds >= 1, 'the fleet led, warmed up and planned while measured');
  assert.ok(out.scale.statusPerS > 20, `status rate ${out.scale.statusPerS}`);
  assert.equal(out.roundTrip.samples, 20);
  assert.equal(out.natsFloor.samples, 20);
  assert.ok(out.roundTrip.windows >= 20, 'at least a window per round trip');
  for (const x of [out.roundTrip, out.natsFloor]) assert.ok(x.p50Ms > 0 && x.p50Ms <= x.p99Ms, JSON.stringify(x));
  assert.ok(Math.abs(out.p99OverFloor - out.roundTrip.p99Ms / out.natsFloor.p99Ms) < 0.01);
  // Round trips and floor samples never overlap: a collection pause falls in one of them at most.
  assert.ok(out.roundTrip.inGc + out.natsFloor.inGc <= out.gc.pauses, JSON.stringify(out.gc));
  assert.ok(out.gc.pauses === 0 ? out.gc.maxMs === 0 : out.gc.maxMs >= out.gc.meanMs && out.gc.meanMs > 0, JSON.stringify(out.gc));
  // The table goes to stderr with --json.
  assert.match(r.stderr, /round trip p99 \/ bare NATS p99/);
});

test('bench fleet - latencySummary counts the samples a collection pause fell in, each once', () => {
  // Samples [0, 1), [2, 3), [4, 5), [6, 7) ms; pauses inside the first, across the 2nd/3rd gap into the 3rd, two in the 4th.
  const s = latencySummary([1, 1, 1, 1], [0, 2, 4, 6], [[0.2, 0.4], [3.5, 4.1], [6.1, 6.2], [6.5, 6.6], [8, 9]]);
  assert.equal(s.inGc, 3);
  assert.equal(s.samples, 4);
  // A pause that ends where a sample starts, or starts where it ends, is outside it.
  assert.equal(latencySummary([1], [2], [[1, 2], [3, 4]]).inGc, 0);
  assert.equal(latencySummary([1], [2], []).inGc, 0);
});
