import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runTool } from '../../gpu/nvidia/exec.ts';
import { binariesFromEnv, MpsControl, NvidiaGpuDevice, NvidiaToolError, PauseGuard, type NvidiaGpu } from '../../gpu/nvidia/index.ts';
import type { DeviceHealth } from '../../gpu/types.ts';
import { alive, cleanup, FAKE_MPS, GPU0_UUID, jsonLines, sleep, STANDIN, tempDir, until } from './helpers.ts';

const GPU: NvidiaGpu = { index: 0, uuid: GPU0_UUID, name: 'NVIDIA H100 80GB HBM3', memoryTotalMiB: 81559, memoryUsedMiB: 1, utilizationPct: 0, migEnabled: false, computeMode: 'Default' };

function control(tag: string, mode?: string, commandTimeoutMs?: number) {
  const dir = tempDir(tag);
  if (mode) process.env.FAKE_MPS_MODE = mode;
  else delete process.env.FAKE_MPS_MODE;
  process.env.FAKE_NVIDIA_LOG = join(dir, 'nvidia.log');
  const lines: string[] = [];
  const mps = new MpsControl({
    binaries: { ...binariesFromEnv({}), mpsControl: FAKE_MPS }, pipeDir: join(dir, 'pipe'), logDir: join(dir, 'log'), gpuUuid: GPU0_UUID,
    log: (l) => lines.push(l), ...(commandTimeoutMs ? { commandTimeoutMs } : {}),
  });
  return { dir, mps, lines };
}

/** A stand-in CUDA program: a client of the daemon on `pipeDir` that ignores SIGTERM. */
function client(pipeDir: string) {
  return spawn(process.execPath, [join(STANDIN, 'training.mjs')], {
    env: { ...process.env, CUDA_MPS_PIPE_DIRECTORY: pipeDir, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE: '40', FAKE_IGNORE_SIGTERM: '1' }, stdio: 'ignore',
  });
}

/** Waits until the daemon's control.log shows the client connected. */
async function registered(dir: string, pid: number): Promise<void> {
  await until(() => { try { return readFileSync(join(dir, 'log', 'control.log'), 'utf8').includes(`NEW CLIENT ${pid} `); } catch { return false; } }, 5000, `client ${pid}`);
}

test('mps - no daemon: the documented "Cannot find MPS control daemon process" becomes a no-daemon error', async () => {
  const { mps } = control('mps-none');
  await assert.rejects(mps.command('get_server_list'), (err: NvidiaToolError) =>
    err.kind === 'no-daemon' && /Cannot find MPS control daemon process/.test(err.message));
  assert.equal(await mps.isRunning(), false);
  await mps.quit(); // nothing to stop is not an error
});

test('exec - a tool whose forked child keeps the inherited stdout open is done when the tool exits', async () => {
  // The tool prints, forks a child that holds stdout and stderr for 20 s, and exits 0.
  const script = "const c = require('node:child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }); c.unref(); console.log('daemon', c.pid);";
  const t0 = Date.now();
  const res = await runTool(process.execPath, { args: ['-e', script], timeoutMs: 5000 });
  const tookMs = Date.now() - t0;
  const child = Number(/daemon (\d+)/.exec(res.stdout)?.[1]);
  try {
    assert.equal(res.code, 0);
    assert.ok(alive(child), 'the forked child still holds the pipes');
    assert.ok(tookMs < 2000, `answered after ${tookMs} ms, not after the child's end`);
  } finally {
    cleanup([child]);
  }
});

test('mps - start returns once `-d` exits although the daemon it forked keeps its stdout', async () => {
  const { dir, mps } = control('mps-fd');
  try {
    const t0 = Date.now();
    assert.equal(await mps.start(), 'started');
    const tookMs = Date.now() - t0;
    const daemonPid = Number(jsonLines(join(dir, 'nvidia.log')).find((l) => l.cmd === '-d')!.daemonPid);
    assert.match(readlinkSync(`/proc/${daemonPid}/fd/1`), /^(pipe|socket):/, 'the stand-in daemon holds the stdout it inherited');
    assert.ok(tookMs < 5000, `start took ${tookMs} ms`);
    await mps.quit();
  } finally {
    cleanup([], [join(dir, 'pipe')]);
  }
});

test('mps - start with our own pipe and log directories on the GPU by UUID, terminate_client (refusals surface), quit', async () => {
  const { dir, mps, lines } = control('mps-life');
  let proc: ReturnType<typeof client> | undefined;
  try {
    assert.equal(await mps.start(), 'started');
    const started = jsonLines(join(dir, 'nvidia.log')).find((l) => l.cmd === '-d')!;
    assert.deepEqual(started.env, { CUDA_VISIBLE_DEVICES: GPU0_UUID, CUDA_MPS_PIPE_DIRECTORY: join(dir, 'pipe'), CUDA_MPS_LOG_DIRECTORY: join(dir, 'log') });
    assert.match(readFileSync(join(dir, 'log', 'control.log'), 'utf8'), /Starting control daemon/);
    assert.equal(await mps.start(), 'reused', 'a daemon that answers is used, not started twice');
    assert.equal(await mps.defaultActiveThreadPercentage(), 100);
    assert.deepEqual(await mps.serverList(), []);

    proc = client(join(dir, 'pipe'));
    const pid = proc.pid!;
    await registered(dir, pid);
    const servers = await mps.serverList();
    assert.equal(servers.length, 1);
    assert.deepEqual(await mps.clientList(servers[0]!), [pid]);
    // PID 999999 is no client of any server: terminate_client is sent to each server and the refusal surfaces.
    await assert.rejects(mps.terminateClient(999999), (err: NvidiaToolError) =>
      err.kind === 'failed' && /no server \(\d+\) holds a context of pid 999999 \(CUDA error 201\)/.test(err.message));
    const exited = new Promise((r) => proc!.once('exit', r));
    assert.deepEqual(await mps.terminateClient(pid), servers);
    await exited;
    assert.equal(alive(pid), false, 'terminate_client ended the client');
    const cmds = jsonLines<{ cmd: string; answer: string }>(join(dir, 'nvidia.log')).map((l) => l.cmd);
    assert.ok(cmds.includes(`terminate_client ${servers[0]} ${pid}`), cmds.join(' | '));
    assert.ok(lines.some((l) => l.includes(`terminate_client ${servers[0]} ${pid}: ok`)));
    assert.ok(lines.some((l) => l.includes(`terminate_client ${servers[0]} 999999: server ${servers[0]} holds no context of 999999 (201)`)), lines.join(' | '));

    await mps.quit();
    assert.equal(await mps.isRunning(), false);
    assert.ok(cmds.length > 0 && jsonLines<{ cmd: string }>(join(dir, 'nvidia.log')).at(-1)!.cmd === 'quit');
  } finally {
    cleanup(proc?.pid ? [proc.pid] : [], [join(dir, 'pipe')]);
  }
});

test('mps - a server in fault is reported', async () => {
  const { dir, mps } = control('mps-fault', 'fault');
  let proc: ReturnType<typeof client> | undefined;
  try {
    await mps.start();
    proc = client(join(dir, 'pipe'));
    await registered(dir, proc.pid!);
    const faulted = await mps.faultedServers();
    assert.equal(faulted.length, 1);
    assert.deepEqual(faulted, await mps.serverList());

    // The device's health check turns the fault into a change its listener (the host runner) publishes.
    const changes: DeviceHealth[] = [];
    const guard = new PauseGuard({ stateDir: join(dir, 'state'), watchdog: false });
    const device = new NvidiaGpuDevice({
      gpuId: 'gpu0', gpu: GPU, clock: () => 0, mps, guard, dir: join(dir, 'gpu0'), services: [], trainings: [], healthPeriodMs: 200, log: () => {},
      initial: { mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 200 }, trainingRunning: true },
    });
    device.onHealth((h) => changes.push(h));
    device.start();
    await until(() => changes.length > 0, 3000, 'a health change');
    await sleep(600);
    assert.equal(changes.length, 1, 'reported once per change, not every check');
    assert.equal(changes[0]!.state, 'fault');
    assert.match(changes[0]!.detail, new RegExp(`MPS daemon fault: MPS server\\(s\\) ${faulted[0]} report a fault`));
    assert.equal(device.mpsHealth, 'fault');
    await device.close();
  } finally {
    delete process.env.FAKE_MPS_MODE;
    cleanup(proc?.pid ? [proc.pid] : [], [join(dir, 'pipe')]);
  }
});

test('mps - a clean stop while health checks run reports nothing: the runner\'s own quit is not a device fault', async () => {
  const { dir, mps } = control('mps-stop');
  const procs: ReturnType<typeof client>[] = [];
  try {
    for (let round = 0; round < 4; round++) {
      await mps.start();
      const proc = client(join(dir, 'pipe'));
      procs.push(proc);
      await registered(dir, proc.pid!);
      const changes: DeviceHealth[] = [];
      const lines: string[] = [];
      const guard = new PauseGuard({ stateDir: join(dir, `state${round}`), watchdog: false });
      // Checks back to back (each runs get_server_list and get_server_status): one is in flight when close() comes.
      const device = new NvidiaGpuDevice({
        gpuId: 'gpu0', gpu: GPU, clock: () => 0, mps, guard, dir: join(dir, 'gpu0'), services: [], trainings: [], healthPeriodMs: 5, log: (l) => lines.push(l),
        initial: { mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 200 }, trainingRunning: true },
      });
      device.onHealth((h) => changes.push(h));
      device.start();
      await sleep(150 + 37 * round);
      proc.kill('SIGKILL');
      await device.close();
      await sleep(300);
      assert.deepEqual(changes, [], `round ${round}: no health change reported`);
      assert.deepEqual(lines.filter((l) => /no-daemon|Cannot find MPS|did not stop cleanly/.test(l)), [], `round ${round}`);
      assert.equal(await mps.isRunning(), false);
      guard.close();
    }
  } finally {
    cleanup(procs.map((p) => p.pid!), [join(dir, 'pipe')]);
  }
});

test('mps - a hung daemon, a daemon that fails to start and a missing binary are each reported', async () => {
  const hung = control('mps-hang', 'hang', 600);
  try {
    await assert.rejects(hung.mps.start(), (err: NvidiaToolError) => err.kind === 'hung' && /did not answer "get_server_list" within 600 ms: it is hung/.test(err.message));
  } finally {
    const pid = Number(readFileSync(join(hung.dir, 'pipe', 'nvidia-cuda-mps-control.pid'), 'utf8'));
    cleanup([pid]);
  }
  const failing = control('mps-fail', 'fail-start');
  await assert.rejects(failing.mps.start(), (err: NvidiaToolError) => err.kind === 'failed' && /-d .*failed \(exit 1\): Failed to start MPS control daemon/.test(err.message));
  delete process.env.FAKE_MPS_MODE;
  const missing = new MpsControl({ binaries: { nvidiaSmi: 'x', mpsControl: join(failing.dir, 'no-such-mps-control') }, pipeDir: join(failing.dir, 'p'), logDir: join(failing.dir, 'l'), gpuUuid: GPU0_UUID });
  await assert.rejects(missing.start(), (err: NvidiaToolError) => err.kind === 'missing' && /GPUCOLO_MPS_CONTROL/.test(err.message));
  const long = new MpsControl({ binaries: binariesFromEnv({}), pipeDir: `/tmp/${'x'.repeat(120)}`, logDir: '/tmp/l', gpuUuid: GPU0_UUID });
  await assert.rejects(long.start(), /longer than 107 bytes/);
});
