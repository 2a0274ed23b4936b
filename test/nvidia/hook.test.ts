import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers.ts';
import { MAX_DUTY } from '../../control/index.ts';
import { MAX_SIGNAL_DUTY } from '../../gpu/nvidia/pacer.ts';

const python = spawnSync('python3', ['--version']).status === 0 ? 'python3' : undefined;
const skip = python ? false : 'python3 is not installed';
const WORKLOADS = join(ROOT, 'workloads');

test('hook - one duty cap: the hook\'s MAX_DUTY is control\'s, as the signal pacer\'s is', () => {
  const source = readFileSync(join(WORKLOADS, 'gpucolo_hook.py'), 'utf8');
  const m = /^MAX_DUTY\s*=\s*([0-9.]+)\s*$/m.exec(source);
  assert.ok(m, 'gpucolo_hook.py sets MAX_DUTY at top level');
  assert.equal(Number(m[1]), MAX_DUTY);
  assert.equal(MAX_SIGNAL_DUTY, MAX_DUTY);
});

test('workloads - every Python program compiles', { skip }, () => {
  const files = readdirSync(WORKLOADS).filter((f) => f.endsWith('.py'));
  assert.ok(files.length >= 3, files.join(', '));
  const out = tempDir('pyc');
  for (const f of files) {
    const r = spawnSync(python!, ['-c', 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)', join(WORKLOADS, f), join(out, `${f}c`)], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
  }
});

test('hook - sleeps as a valid lease says, stops sleeping once it expires, reports progress', { skip }, () => {
  const dir = tempDir('hook');
  const script = String.raw`
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from gpucolo_hook import Pacer
d = sys.argv[2]
lease, progress = os.path.join(d, "lease.json"), os.path.join(d, "progress.json")
def write(**kw):
    kw.setdefault("expiresUnixMs", time.time() * 1000 + 5000)
    with open(lease, "w") as f: json.dump({"v": 1, **kw}, f)
def run(p, n, work=0.0):
    t = time.monotonic()
    for _ in range(n):
        if work: time.sleep(work)
        p.step()
    return time.monotonic() - t
out = {}
p = Pacer(lease_file=lease, progress_file=progress)
write(mode="per-iteration", sleepMs=100, duty=0, periodMs=0)
out["perIteration5"] = run(p, 5)
write(mode="per-iteration", sleepMs=100, duty=0, periodMs=0, expiresUnixMs=time.time() * 1000 - 1)
time.sleep(0.06)
out["expired5"] = run(p, 5)
write(mode="duty", duty=0.5, periodMs=200, sleepMs=0)
time.sleep(0.06)
p2 = Pacer(lease_file=lease, progress_file=None)
out["duty10"] = run(p2, 10, work=0.02)
out["dutySlept"] = p2.slept_s
# A lease that asks for a long sleep but lapses mid-sleep: the hook wakes when it lapses.
write(mode="per-iteration", sleepMs=10000, duty=0, periodMs=0, expiresUnixMs=time.time() * 1000 + 300)
time.sleep(0.06)
out["lapsing"] = run(p, 1)
out["noLease"] = run(Pacer(lease_file=os.path.join(d, "missing.json")), 20)
p.flush_progress()
with open(progress) as f: out["progress"] = json.load(f)
out["pid"] = os.getpid()
print(json.dumps(out))
`;
  const r = spawnSync(python!, ['-c', script, WORKLOADS, dir], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number> & { progress: { iterations: number; pid: number } };
  assert.ok(o.perIteration5! >= 0.45 && o.perIteration5! < 1.5, `5 iterations at 100 ms sleep took ${o.perIteration5}`);
  assert.ok(o.expired5! < 0.05, `an expired lease: no sleep (${o.expired5})`);
  // Duty 0.5 with 20 ms of work per iteration: about as much sleep as work.
  assert.ok(o.dutySlept! > 0.1 && o.dutySlept! < 0.35, `slept ${o.dutySlept} s over 10 x 20 ms of work`);
  assert.ok(o.lapsing! > 0.15 && o.lapsing! < 1, `a 10 s sleep ended when the lease lapsed (${o.lapsing})`);
  assert.ok(o.noLease! < 0.05);
  assert.deepEqual(o.progress, { iterations: 11, pid: o.pid });
  assert.equal(readFileSync(join(dir, 'lease.json'), 'utf8').includes('"v": 1'), true);
});
