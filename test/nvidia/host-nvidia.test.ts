import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus, decode } from '../../bus/index.ts';
import { processState } from '../../gpu/nvidia/index.ts';
import { subjects, type GpuStatusEvent } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';
import {
  alive, BIN, cleanup, FAKE_BIN, fakeEnv, FIXTURES, GPU0_UUID, GPU2_UUID, jsonLines, runCli, sleep, STANDIN, tempDir, until,
} from './helpers.ts';

const server = useNats({ raw: true });

const node = JSON.stringify(process.execPath);
const standIn = (name: string) => JSON.stringify(join(STANDIN, name));
interface Launch { pid: number; pct: string; pipe: string; visible: string; lease: string | null; resumedFrom: number }
interface MpsLog { tool: string; cmd?: string; pipeDir?: string; env?: Record<string, string>; answer?: string }

test('gpus - lists every GPU from a fake nvidia-smi, managed or not and why; JSON last line; unavailable values are null', async () => {
  const json = await runCli(['gpus', '--json'], fakeEnv());
  assert.equal(json.code, 0, json.stderr);
  const gpus = JSON.parse(json.stdout.trim().split('\n').at(-1)!).gpus;
  assert.deepEqual(gpus[0], { index: 0, uuid: GPU0_UUID, name: 'NVIDIA H100 80GB HBM3', memoryTotalMiB: 81559, memoryUsedMiB: 1, utilizationPct: 0, managed: true, reason: null });
  assert.equal(gpus[1].index, 1, 'the GPU that is not managed is listed too');
  assert.equal(gpus[1].managed, false);
  assert.match(gpus[1].reason, /^MIG is enabled/);
  assert.deepEqual(gpus[2], { index: 2, uuid: GPU2_UUID, name: 'NVIDIA GeForce RTX 3090', memoryTotalMiB: 24576, memoryUsedMiB: null, utilizationPct: 3, managed: true, reason: null });
  assert.equal(gpus.length, 3);
  assert.match(json.stderr, /GPU 1 \(GPU-9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b\) is not managed: MIG is enabled/);
  const table = await runCli(['gpus'], fakeEnv());
  assert.equal(table.code, 0);
  assert.match(table.stdout, /NVIDIA H100 80GB HBM3 .* yes/);
  assert.match(table.stdout, /NVIDIA A100-SXM4-40GB .* no: MIG is enabled/);
  assert.match(table.stdout, /process 4242 python3 on GPU 0, 1234 MiB/);
  const failing = await runCli(['gpus', '--json'], fakeEnv({ FAKE_NVIDIA_SMI_SCENARIO: join(FIXTURES, 'smi-scenario-driver-failure.json') }));
  assert.equal(failing.code, 1);
  assert.match(failing.stderr, /failed \(exit 9\): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
});

test('host nvidia - usage and setup errors exit 2 or 1 with what to fix, and leave nothing behind', async () => {
  const dir = tempDir('host-err');
  const env = fakeEnv({ NATS_URL: server.url });
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ gpus: [{ gpu: 0, services: [{ id: 's', sloMs: 10, command: ['x'], latency: { source: 'stdout' } }], trainings: [{ id: 't', command: ['y'] }] }] }));
  const bad = await runCli(['host', '--host-id', 'ne', '--backend', 'nvidia', '--workloads', join(dir, 'bad.json')], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /\/gpus\/0\/trainings\/0.*pacing/);
  const mig = join(dir, 'mig.yaml');
  writeFileSync(mig, `gpus:\n  - gpu: 1\n    services: [{ id: s, sloMs: 10, command: [${node}], latency: { source: stdout } }]\n    trainings: []\n`);
  const onMig = await runCli(['host', '--host-id', 'ne', '--backend', 'nvidia', '--workloads', mig, '--state-dir', join(dir, 's1')], env);
  assert.equal(onMig.code, 1);
  assert.match(onMig.stderr, /GPU 1 \(GPU-9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b\) cannot be managed: MIG is enabled/);
  assert.doesNotMatch(onMig.stderr, /bus nats/, 'refused before connecting to the bus or starting anything');
  // A missing nvidia-cuda-mps-control is found when the GPUs are claimed: reported, and the state directory released.
  const { loadNvidiaWorkloads, matchNvidiaGpus, prepareNvidiaBackend } = await import('../../runners/host/nvidia/nvidia-backend.ts');
  writeFileSync(mig, readFileSync(mig, 'utf8').replace('gpu: 1', 'gpu: 0'));
  const file = loadNvidiaWorkloads(mig);
  const binaries = { nvidiaSmi: join(FAKE_BIN, 'nvidia-smi'), mpsControl: join(dir, 'no-such-mps-control') };
  const chosen = await matchNvidiaGpus(file, () => {}, binaries);
  assert.deepEqual(chosen.map((c) => c.gpu.uuid), [GPU0_UUID]);
  await assert.rejects(prepareNvidiaBackend({ hostId: 'ne', workloads: file, chosen, baseDir: dir, stateDir: join(dir, 's3'), binaries, clock: () => 0, log: () => {} }),
    /no-such-mps-control was not found \(install the NVIDIA driver utilities, or set GPUCOLO_MPS_CONTROL/);
  assert.equal(existsSync(join(dir, 's3', 'paused.json')), false, 'the state directory is released');
});

test('host nvidia - two GPUs under their own MPS daemons: latency from stdout, a share change restarts training through its checkpoint, terminate_client before any kill, every process stopped', async () => {
  const dir = tempDir('host');
  const state = join(dir, 'state');
  const log = join(dir, 'nvidia.log');
  const workloads = join(dir, 'workloads.yaml');
  writeFileSync(workloads, `
policy: simple
gpus:
  - gpu: 0
    services:
      - id: resnet50
        sloMs: 25
        command: [${node}, ${standIn('inference.mjs')}]
        env: { FAKE_LATENCY_MS: "8", FAKE_RATE_RPS: "100" }
        latency: { source: stdout }
    trainings:
      - id: train
        command: [${node}, ${standIn('training.mjs')}]
        pacing: cooperative
  - gpu: ${GPU2_UUID}
    services:
      - id: bert
        sloMs: 40
        command: [${node}, ${standIn('inference.mjs')}]
        latency: { source: stdout }
    trainings:
      - id: stubborn
        command: [${node}, ${standIn('training.mjs')}]
        env: { FAKE_IGNORE_SIGTERM: "1" }
        pacing: signal
        checkpointGraceS: 0.3
`);
  const statuses = new Map<string, GpuStatusEvent>();
  const sub = server.raw.subscribe('colo.v1.evt.na.*.status', { callback: (_e, m) => { const ev = decode(m.data) as GpuStatusEvent; statuses.set(ev.gpu, ev); } });
  await server.raw.flush();
  const child = spawn(process.execPath, [BIN, 'host', '--host-id', 'na', '--backend', 'nvidia', '--workloads', workloads, '--state-dir', state, '--json'],
    { env: fakeEnv({ NATS_URL: server.url, FAKE_NVIDIA_LOG: log }), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const trainLaunches = join(state, 'gpu0', 'train.ckpt.launches');
  const pids = () => [...stderr.matchAll(/launched pid (\d+)/g)].map((m) => Number(m[1]));
  const bus = await Bus.connect({ url: server.url, name: 'nvidia-test', host: 'na' });
  try {
    await until(() => ['gpu0', 'gpu1'].every((g) => (statuses.get(g)?.services[0]?.p99Ms ?? 0) > 0 && (statuses.get(g)?.trainings[0]?.iterations ?? 0) > 0), 20_000,
      `latency and training progress on both GPUs\n${stderr}`);
    const s0 = statuses.get('gpu0')!;
    assert.ok(s0.services[0]!.p99Ms > 6 && s0.services[0]!.p99Ms < 12, `p99 ${s0.services[0]!.p99Ms} ms from the stand-in's ~8 ms lines`);
    assert.equal(s0.mpsSharePct, 50);

    const started = jsonLines<MpsLog>(log).filter((l) => l.tool === 'mps' && l.cmd === '-d');
    assert.deepEqual(started.map((l) => l.env), [
      { CUDA_VISIBLE_DEVICES: GPU0_UUID, CUDA_MPS_PIPE_DIRECTORY: join(state, 'mps0', 'pipe'), CUDA_MPS_LOG_DIRECTORY: join(state, 'mps0', 'log') },
      { CUDA_VISIBLE_DEVICES: GPU2_UUID, CUDA_MPS_PIPE_DIRECTORY: join(state, 'mps2', 'pipe'), CUDA_MPS_LOG_DIRECTORY: join(state, 'mps2', 'log') },
    ]);
    const [first] = jsonLines<Launch>(trainLaunches);
    assert.deepEqual({ pct: first!.pct, pipe: first!.pipe, visible: first!.visible, lease: first!.lease },
      { pct: '50', pipe: join(state, 'mps0', 'pipe'), visible: GPU0_UUID, lease: join(state, 'gpu0', 'train.lease.json') });
    assert.ok(existsSync(join(state, 'gpu0', 'train.lease.json')), 'the cooperative lease is kept');
    assert.equal(jsonLines<Launch>(join(state, 'gpu1', 'stubborn.ckpt.launches'))[0]!.lease, null, 'a signal-paced job gets no lease');

    // The outer-tier knob, as the GPU actor sends it: the job must checkpoint, exit and come back at 30%.
    const reply = await bus.request<'training.command'>(subjects.trainingCommand('na', 'gpu0', 'train'), { type: 'training.command', action: 'set-mps-share', mpsSharePct: 30 });
    assert.equal(reply.ok, true, JSON.stringify(reply));
    await until(() => jsonLines(trainLaunches).length === 2, 10_000, `the relaunch\n${stderr}`);
    const second = jsonLines<Launch>(trainLaunches)[1]!;
    assert.equal(second.pct, '30');
    assert.equal(second.pipe, first!.pipe, 'the same MPS daemon');
    assert.equal(second.resumedFrom, 1, 'the checkpoint was written before the relaunch');
    assert.equal(alive(first!.pid), false);
    assert.match(readFileSync(join(state, 'gpu0', 'train.ckpt'), 'utf8'), new RegExp(`^pid ${first!.pid} pct 50 iterations \\d+`));
    await until(() => statuses.get('gpu0')?.trainings[0]?.state === 'running', 5000, 'running again');
    const stubborn = jsonLines<Launch>(join(state, 'gpu1', 'stubborn.ckpt.launches'))[0]!;

    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr.slice(-3000));
    const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as { host: string; gpus: Array<{ id: string }> };
    assert.deepEqual(summary.gpus.map((g) => g.id), ['na/gpu0', 'na/gpu1']);

    const mps = jsonLines<MpsLog>(log).filter((l) => l.tool === 'mps');
    const on2 = mps.filter((l) => l.pipeDir === join(state, 'mps2', 'pipe')).map((l) => l.cmd!);
    const term = on2.findIndex((c) => new RegExp(`^terminate_client \\d+ ${stubborn.pid}$`).test(c));
    assert.ok(term >= 0, `terminate_client for the job that ignored SIGTERM: ${on2.join(' | ')}`);
    assert.ok(on2.indexOf('quit') > term, 'the daemon quits after its clients are gone');
    assert.match(stderr, new RegExp(`gpu1/stubborn: pid ${stubborn.pid} stopped \\(terminate_client`));
    assert.ok(mps.some((l) => l.pipeDir === join(state, 'mps0', 'pipe') && l.cmd === 'quit'));
    assert.equal(existsSync(join(state, 'mps0', 'pipe', 'control')), false, 'MPS daemon 0 stopped');
    assert.equal(existsSync(join(state, 'mps2', 'pipe', 'control')), false, 'MPS daemon 2 stopped');
    for (const pid of pids()) assert.equal(alive(pid), false, `pid ${pid} is gone`);
    assert.equal(existsSync(join(state, 'paused.json')), false);
    assert.equal(existsSync(join(state, 'gpu0', 'train.lease.json')), false, 'the lease is withdrawn');
  } finally {
    sub.unsubscribe();
    await bus.close();
    child.kill('SIGKILL');
    cleanup(pids(), [join(state, 'mps0', 'pipe'), join(state, 'mps2', 'pipe')]);
  }
});

test('host nvidia - SIGKILL of the runner while training is paused: no process is left stopped', async () => {
  const dir = tempDir('host-kill');
  const state = join(dir, 'state');
  const workloads = join(dir, 'workloads.json');
  writeFileSync(workloads, JSON.stringify({
    policy: 'gpucolo',
    gpus: [{
      gpu: GPU0_UUID,
      services: [{ id: 'svc', sloMs: 10, command: [process.execPath, join(STANDIN, 'inference.mjs')], env: { FAKE_LATENCY_MS: '30' }, latency: { source: 'stdout' } }],
      trainings: [{ id: 'job', command: [process.execPath, join(STANDIN, 'training.mjs')], env: { FAKE_QUIET: '1' }, pacing: 'signal' }],
    }],
  }));
  const child = spawn(process.execPath, [BIN, 'host', '--host-id', 'nk', '--backend', 'nvidia', '--workloads', workloads, '--state-dir', state],
    { env: fakeEnv({ NATS_URL: server.url }), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const pids = () => [...stderr.matchAll(/launched pid (\d+)/g)].map((m) => Number(m[1]));
  try {
    const launches = join(state, 'gpu0', 'job.ckpt.launches');
    await until(() => jsonLines(launches).length === 1, 20_000, `the training job\n${stderr}`);
    const job = jsonLines<Launch>(launches)[0]!.pid;
    await until(() => processState(job) === 'T', 10_000, 'the signal pacer to pause training');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await until(() => processState(job) !== 'T', 2000, 'the paused job to be resumed after the runner died');
    assert.equal(alive(job), true, 'training keeps running');
    await sleep(300);
    assert.notEqual(processState(job), 'T', 'and stays resumed');
    // The watchdog cleared the paused list and kept the record of what the dead runner launched.
    const record = JSON.parse(readFileSync(join(state, 'paused.json'), 'utf8')) as { entries: unknown[]; owned: { pid: number }[] };
    assert.deepEqual(record.entries, []);
    const leftovers = record.owned.map((e) => e.pid).sort();
    assert.deepEqual(leftovers, [...pids()].sort(), 'the service and the training job are on record');

    // The next runner on the same state directory stops them before launching its own (a workload that
    // writes to the dead runner's pipe may already have ended by itself).
    const running = leftovers.filter((pid) => alive(pid) && processState(pid) !== 'Z');
    assert.deepEqual(running, [job], 'the quiet training job outlived its runner');
    const again = await runCli(['host', '--host-id', 'nk', '--backend', 'nvidia', '--workloads', workloads, '--state-dir', state, '--duration', '2'], fakeEnv({ NATS_URL: server.url }));
    assert.equal(again.code, 0, again.stderr.slice(-2000));
    for (const pid of leftovers) assert.ok(!alive(pid) || processState(pid) === 'Z', `leftover ${pid} stopped`);
    for (const pid of running) {
      assert.match(again.stderr, new RegExp(`stopping gpu0/(svc|job) \\(pid ${pid}\\) left running by a previous runner`));
    }
    assert.ok(!existsSync(join(state, 'paused.json')), 'a clean stop leaves no record');
    for (const m of again.stderr.matchAll(/launched pid (\d+)/g)) assert.equal(alive(Number(m[1])), false, `the second runner's pid ${m[1]} stopped with it`);
  } finally {
    child.kill('SIGKILL');
    cleanup(pids(), [join(state, 'mps0', 'pipe')]);
  }
});
