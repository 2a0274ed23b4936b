import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LeasePacer, PauseGuard, processStartTicks, processState, signalCycle, SignalPacer, StateDirError, type Lease,
} from '../../gpu/nvidia/index.ts';
import { alive, cleanup, ROOT, sleep, tempDir, until } from './helpers.ts';

/** A process in its own group that just lives. */
function sleeper(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

async function stopped(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  await until(() => processState(pid) === 'T', 3000, `pid ${pid} stopped`);
}

test('pause guard - the next start resumes what a dead runner left paused, never a reused PID', async () => {
  const dir = tempDir('guard');
  const a = sleeper();
  const b = sleeper();
  try {
    await stopped(a.pid!);
    await stopped(b.pid!);
    writeFileSync(join(dir, 'paused.json'), JSON.stringify({
      runnerPid: deadPid(),
      entries: [{ pid: a.pid, startTicks: processStartTicks(a.pid!), label: 'gpu0/job' }, { pid: b.pid, startTicks: '1', label: 'reused' }],
    }));
    const lines: string[] = [];
    const guard = new PauseGuard({ stateDir: dir, watchdog: false, log: (l) => lines.push(l) });
    const { resumed } = guard.start();
    assert.deepEqual(resumed.map((e) => e.pid), [a.pid]);
    assert.notEqual(processState(a.pid!), 'T');
    assert.equal(processState(b.pid!), 'T', 'a PID whose start time differs is not ours: left alone');
    assert.match(lines[0]!, /resumed gpu0\/job .* left paused by a previous runner/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'paused.json'), 'utf8')), { runnerPid: process.pid, entries: [], owned: [] });
    guard.close();
    assert.throws(() => statSync(join(dir, 'paused.json')), /ENOENT/);
  } finally {
    cleanup([a.pid!, b.pid!]);
  }
});

test('pause guard - the next start stops the workloads a dead runner left running (SIGTERM, then SIGKILL), never a reused PID', async () => {
  const dir = tempDir('reap');
  const polite = sleeper();
  const stubborn = spawn(process.execPath, ['-e', 'process.on("SIGTERM", () => {}); setInterval(() => {}, 1e9)'], { detached: true, stdio: 'ignore' });
  stubborn.unref();
  const other = sleeper();
  try {
    await sleep(300); // the stubborn one has installed its SIGTERM handler
    await stopped(polite.pid!); // a paused leftover cannot act on SIGTERM until resumed
    const entry = (pid: number, label: string, ticks = processStartTicks(pid)) => ({ pid, startTicks: ticks, label });
    writeFileSync(join(dir, 'paused.json'), JSON.stringify({
      runnerPid: deadPid(), entries: [],
      owned: [entry(polite.pid!, 'gpu0/resnet50'), entry(stubborn.pid!, 'gpu0/train'), entry(other.pid!, 'reused', '1')],
    }));
    const lines: string[] = [];
    const guard = new PauseGuard({ stateDir: dir, watchdog: false, log: (l) => lines.push(l) });
    guard.start();
    // Until reaped they stay on record: a crash now still finds them next time.
    assert.deepEqual((JSON.parse(readFileSync(join(dir, 'paused.json'), 'utf8')) as { owned: { pid: number }[] }).owned.map((e) => e.pid), [polite.pid, stubborn.pid]);
    const reaped = await guard.reapLeftovers(800);
    assert.deepEqual(reaped.map((e) => e.pid), [polite.pid, stubborn.pid]);
    await until(() => !alive(polite.pid!) && !alive(stubborn.pid!), 3000, 'both leftovers gone');
    assert.equal(alive(other.pid!), true, 'a PID whose start time differs is not ours: left alone');
    assert.ok(lines.some((l) => new RegExp(`stopping gpu0/resnet50 \\(pid ${polite.pid}\\) left running by a previous runner`).test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => new RegExp(`killing gpu0/train \\(pid ${stubborn.pid}\\): still running 800 ms after SIGTERM`).test(l)), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('killing gpu0/resnet50')), 'the polite one exited on SIGTERM');
    // What this runner launches is recorded from launch to exit.
    const mine = sleeper();
    guard.own(mine.pid!, 'gpu0/new');
    assert.deepEqual((JSON.parse(readFileSync(join(dir, 'paused.json'), 'utf8')) as { owned: { pid: number }[] }).owned.map((e) => e.pid), [mine.pid]);
    guard.disown(mine.pid!);
    cleanup([mine.pid!]);
    guard.close();
  } finally {
    cleanup([polite.pid!, stubborn.pid!, other.pid!]);
  }
});

test('pause guard - a state directory held by a live runner is refused', () => {
  const dir = tempDir('guard-live');
  const other = sleeper();
  try {
    writeFileSync(join(dir, 'paused.json'), JSON.stringify({ runnerPid: other.pid, entries: [] }));
    assert.throws(() => new PauseGuard({ stateDir: dir, watchdog: false }).start(), (err: Error) => err instanceof StateDirError && /belongs to a running gpucolo host runner/.test(err.message));
  } finally {
    cleanup([other.pid!]);
  }
});

test('signal pacer - SIGSTOP/SIGCONT duty cycling of a real process group; released on duty 0 and close', async () => {
  const dir = tempDir('pacer');
  const child = sleeper();
  const guard = new PauseGuard({ stateDir: dir, watchdog: false });
  guard.start();
  const pacer = new SignalPacer(guard, 'gpu0/job');
  try {
    pacer.attach(child.pid!);
    assert.deepEqual(JSON.parse(readFileSync(guard.file, 'utf8')).entries.map((e: { pid: number }) => e.pid), [child.pid], 'registered before the first SIGSTOP');
    pacer.set({ mode: 'duty', duty: 0.5, periodMs: 100 });
    let samples = 0;
    let paused = 0;
    const end = Date.now() + 1000;
    while (Date.now() < end) {
      samples++;
      if (processState(child.pid!) === 'T') paused++;
      await sleep(3);
    }
    const share = paused / samples;
    assert.ok(share > 0.25 && share < 0.75, `paused ${(share * 100).toFixed(0)}% of the time at duty 0.5`);
    assert.ok(pacer.pauses >= 5, `${pacer.pauses} pauses`);
    pacer.set({ mode: 'duty', duty: 0, periodMs: 100 });
    assert.notEqual(processState(child.pid!), 'T');
    await sleep(250);
    assert.notEqual(processState(child.pid!), 'T', 'duty 0: never paused');
    pacer.set({ mode: 'per-iteration', sleepMs: 400 });
    await until(() => processState(child.pid!) === 'T', 2000, 'a pause');
    pacer.close();
    assert.notEqual(processState(child.pid!), 'T', 'close resumes at once');
    assert.deepEqual(JSON.parse(readFileSync(guard.file, 'utf8')).entries, []);
  } finally {
    guard.close();
    cleanup([child.pid!]);
  }
  const full = signalCycle({ mode: 'duty', duty: 1, periodMs: 200 });
  assert.equal(full.stopMs, 190, 'a duty of 1 is capped: never a full pause');
  assert.ok(Math.abs(full.runMs - 10) < 1e-6);
  assert.equal(signalCycle({ mode: 'per-iteration', sleepMs: 100 }).runMs, 200);
});

/** A runner stand-in: a guard, a paused child, then `end` (throw, or wait to be SIGKILLed). */
function runnerStandIn(stateDir: string, watchdog: boolean, end: 'throw' | 'wait'): ChildProcess {
  const guardModule = JSON.stringify(join(ROOT, 'gpu', 'nvidia', 'pause-guard.ts'));
  const script = `
    const { spawn } = await import('node:child_process');
    const { PauseGuard } = await import(${guardModule});
    const guard = new PauseGuard({ stateDir: ${JSON.stringify(stateDir)}, watchdog: ${watchdog} });
    guard.start();
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { detached: true, stdio: 'ignore' });
    child.unref();
    guard.register(child.pid, 'gpu0/job');
    process.kill(-child.pid, 'SIGSTOP');
    process.stdout.write(child.pid + '\\n');
    setTimeout(() => { if (${JSON.stringify(end)} === 'throw') throw new Error('crash'); }, 300);
    setInterval(() => {}, 1e9);
  `;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function pausedChildOf(runner: ChildProcess): Promise<number> {
  let out = '';
  runner.stdout!.on('data', (d) => { out += d; });
  await until(() => out.includes('\n'), 15_000, 'the stand-in runner');
  const pid = Number(out.trim());
  await until(() => processState(pid) === 'T', 3000, 'the child paused');
  return pid;
}

test('pause guard - an uncaught exception in the runner still resumes every paused process', async () => {
  const runner = runnerStandIn(tempDir('crash'), false, 'throw');
  const pid = await pausedChildOf(runner);
  try {
    const code = await new Promise((r) => runner.once('exit', r));
    assert.equal(code, 1, 'the runner crashed');
    assert.equal(alive(pid), true);
    assert.notEqual(processState(pid), 'T', 'resumed by the exit hook');
  } finally {
    cleanup([pid]);
  }
});

test('pause guard - the detached watchdog resumes paused processes when the runner is SIGKILLed', async () => {
  const dir = tempDir('kill');
  const runner = runnerStandIn(dir, true, 'wait');
  const pid = await pausedChildOf(runner);
  try {
    runner.kill('SIGKILL');
    await until(() => processState(pid) !== 'T', 2000, 'the watchdog to resume the child');
    await until(() => { try { statSync(join(dir, 'paused.json')); return false; } catch { return true; } }, 2000, 'the watchdog to remove the record');
  } finally {
    cleanup([pid]);
  }
});

test('lease pacer - a fresh lease with an expiry, renewed, removed on close', async () => {
  const dir = tempDir('lease');
  const file = join(dir, 'job.lease.json');
  const pacer = new LeasePacer(file, 300);
  try {
    pacer.set({ mode: 'per-iteration', sleepMs: 40 });
    const first = JSON.parse(readFileSync(file, 'utf8')) as Lease;
    assert.equal(first.mode, 'per-iteration');
    assert.equal(first.sleepMs, 40);
    assert.ok(first.expiresUnixMs > Date.now() && first.expiresUnixMs <= Date.now() + 300);
    await sleep(250);
    const later = JSON.parse(readFileSync(file, 'utf8')) as Lease;
    assert.ok(later.expiresUnixMs > first.expiresUnixMs, 'renewed before it expires');
    pacer.release();
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as Lease).duty, 0);
  } finally {
    pacer.close();
  }
  assert.throws(() => statSync(file), /ENOENT/);
});
