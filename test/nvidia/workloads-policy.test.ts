import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus, decode } from '../../bus/index.ts';
import { subjects, type GpuSafetyEvent, type GpuStatusEvent } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';
import { alive, BIN, cleanup, fakeEnv, GPU2_UUID, jsonLines, sleep, STANDIN, tempDir, until } from './helpers.ts';

const server = useNats({ raw: true });

const q = (s: string) => JSON.stringify(s);
/** The environment a process was started with, from /proc. */
const environ = (pid: number) => Object.fromEntries(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));

test('host nvidia - a service that exits at once is a safety event and relaunches under its policy; a job that cannot checkpoint keeps its share; GPU memory limits reach the clients', async () => {
  const dir = tempDir('wpol');
  const state = join(dir, 'state');
  // Exits with code 3 on its first run, then serves as the stand-in does (a service that failed to come up once).
  const flaky = join(dir, 'flaky.mjs');
  writeFileSync(flaky, `import fs from 'node:fs';\nconst mark = ${q(join(dir, 'flaky.ran'))};\nif (!fs.existsSync(mark)) { fs.writeFileSync(mark, '1'); process.exit(3); }\nawait import(${q(join(STANDIN, 'inference.mjs'))});\n`);
  // A training job that crashes once at start (code 3), then trains.
  const flakyTrain = join(dir, 'flaky-train.mjs');
  writeFileSync(flakyTrain, `import fs from 'node:fs';\nconst mark = ${q(join(dir, 'train.ran'))};\nif (!fs.existsSync(mark)) { fs.writeFileSync(mark, '1'); process.exit(3); }\nawait import(${q(join(STANDIN, 'training.mjs'))});\n`);
  const workloads = join(dir, 'w.yaml');
  writeFileSync(workloads, `
policy: gpucolo
gpus:
  - gpu: 0
    services:
      - id: flaky
        sloMs: 25
        command: [${q(process.execPath)}, ${q(flaky)}]
        env: { FAKE_RATE_RPS: "100" }
        latency: { source: stdout }
        restartBackoffS: 0.3
    trainings:
      - id: train
        command: [${q(process.execPath)}, ${q(flakyTrain)}]
        pacing: cooperative
        memoryLimitMiB: 2048
        restartBackoffS: 0.2
  - gpu: ${GPU2_UUID}
    services:
      - id: bert
        sloMs: 40
        command: [${q(process.execPath)}, ${q(join(STANDIN, 'inference.mjs'))}]
        latency: { source: stdout }
        memoryLimitMiB: 1024
      - id: broken
        sloMs: 40
        command: [${q(process.execPath)}, -e, "process.exit(3)"]
        latency: { source: stdout }
        restartBackoffS: 0.2
        restartLimit: 1
    trainings:
      - id: legacy
        command: [${q(process.execPath)}, ${q(join(STANDIN, 'training.mjs'))}]
        pacing: signal
        mpsSharePct: 40
`);
  const safety: GpuSafetyEvent[] = [];
  const statuses = new Map<string, GpuStatusEvent>();
  const subs = [
    server.raw.subscribe('colo.v1.evt.wp.*.safety', { callback: (_e, m) => { safety.push(decode(m.data) as GpuSafetyEvent); } }),
    server.raw.subscribe('colo.v1.evt.wp.*.status', { callback: (_e, m) => { const s = decode(m.data) as GpuStatusEvent; statuses.set(s.gpu, s); } }),
  ];
  await server.raw.flush();
  const child = spawn(process.execPath, [BIN, 'host', '--host-id', 'wp', '--backend', 'nvidia', '--workloads', workloads, '--state-dir', state],
    { env: fakeEnv({ NATS_URL: server.url }), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const pids = () => [...stderr.matchAll(/launched pid (\d+)/g)].map((m) => Number(m[1]));
  const bus = await Bus.connect({ url: server.url, name: 'wpol-test', host: 'wp' });
  try {
    // gpu0: down (code 3) is a safety event at once, training to the safe duty; relaunched; serving again restores control.
    await until(() => safety.some((e) => e.gpu === 'gpu0' && e.condition === 'telemetry-restored'), 20_000, `gpu0 back under control\n${stderr}`);
    const lost = safety.find((e) => e.gpu === 'gpu0' && e.condition === 'telemetry-lost')!;
    assert.match(lost.detail, /service flaky: inference pid \d+ exited on its own \(code 3\) after \d+ ms; relaunch 1 of at most 5 in 300 ms: training sleep duty held at 0.9/);
    assert.match(stderr, /gpu0\/flaky: relaunch|gpu0\/flaky: inference pid \d+ exited on its own \(code 3\)/);
    await until(() => statuses.get('gpu0')?.state === 'controlling' && (statuses.get('gpu0')?.services[0]?.p99Ms ?? 0) > 0, 10_000, 'gpu0 controlling with latency');

    // gpu1: `broken` always exits 3: relaunched once (its limit), then left down; the GPU stays safe, never "controlling".
    await until(() => /gpu1\/broken: .*not relaunched: it failed 2 times in a row, past its restart limit of 1/.test(stderr), 10_000, `broken given up\n${stderr}`);
    await until(() => statuses.get('gpu1')?.state === 'safe', 5000, 'gpu1 safe');
    const s1 = statuses.get('gpu1')!;
    assert.deepEqual(s1.pacing, { mode: 'duty', duty: 0.9, periodMs: s1.pacing.mode === 'duty' ? s1.pacing.periodMs : 0 });
    assert.ok(safety.some((e) => e.gpu === 'gpu1' && e.condition === 'telemetry-lost' && /service broken: .*code 3/.test(e.detail)));
    await sleep(1500);
    assert.equal(statuses.get('gpu1')!.state, 'safe', 'a service given up on keeps its GPU safe');

    // The job that cannot checkpoint runs at its fixed share and is never restarted to change it.
    const launches = join(state, 'gpu1', 'legacy.ckpt.launches');
    assert.equal(jsonLines<{ pct: string }>(launches)[0]!.pct, '40');
    assert.equal(statuses.get('gpu1')!.mpsSharePct, 40, 'the controller starts from the fixed share');
    const reply = await bus.request<'training.command'>(subjects.trainingCommand('wp', 'gpu1', 'legacy'), { type: 'training.command', action: 'set-mps-share', mpsSharePct: 20 });
    assert.equal(reply.ok, true);
    assert.equal((reply.state as { mpsSharePct: number }).mpsSharePct, 40);
    await sleep(1000);
    assert.equal(jsonLines(launches).length, 1, 'not relaunched');
    assert.match(stderr, /gpu1\/legacy: MPS share stays 40% \(asked 20%\): the job cannot checkpoint/);
    assert.match(stderr, /gpu1: MPS share fixed at 40%/);
    // Asked to stop, it is kept running at the duty cap (stopping would lose its work), and runs on when asked.
    const legacyPid = jsonLines<{ pid: number }>(launches)[0]!.pid;
    const stop = await bus.request<'training.command'>(subjects.trainingCommand('wp', 'gpu1', 'legacy'), { type: 'training.command', action: 'set-running', running: false });
    assert.equal(stop.ok, true);
    await until(() => /gpu1\/legacy: kept running at the duty cap \(0\.95\) instead of stopped: the job cannot checkpoint/.test(stderr), 5000, `held at the cap\n${stderr}`);
    await sleep(1000);
    assert.equal(alive(legacyPid), true, 'the job that cannot checkpoint is not stopped');
    assert.equal(jsonLines(launches).length, 1, 'nor relaunched');
    // Nor is it moved by the fleet: a checkpoint would stop it.
    const move = await bus.request<'placement.command'>(subjects.placementCommand('wp', 'gpu1'), { type: 'placement.command', action: 'checkpoint-training', jobId: 'legacy' });
    assert.equal(move.ok, false);
    assert.match(String(move.error), /training legacy cannot checkpoint: it is not moved/);
    assert.equal(alive(legacyPid), true);
    const run = await bus.request<'training.command'>(subjects.trainingCommand('wp', 'gpu1', 'legacy'), { type: 'training.command', action: 'set-running', running: true });
    assert.equal(run.ok, true);
    await until(() => /gpu1\/legacy: running again, its pacing restored/.test(stderr), 5000, `running again\n${stderr}`);
    assert.equal(jsonLines(launches).length, 1, 'the same process runs on');

    // The training job that crashed at start was relaunched by its policy and trains.
    assert.match(stderr, /gpu0\/train: pid \d+ exited on its own \(code 3\) after \d+ ms; relaunch 1 of at most 5 in 200 ms/);
    await until(() => (statuses.get('gpu0')?.trainings[0]?.iterations ?? 0) > 0 && statuses.get('gpu0')?.trainings[0]?.state === 'running', 10_000, 'the relaunched job trains');

    // GPU memory limits: the MPS variable for the client's only device.
    const trainPid = jsonLines<{ pid: number }>(join(state, 'gpu0', 'train.ckpt.launches'))[0]!.pid;
    assert.equal(environ(trainPid).CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, '0=2048M');
    const bertPid = Number(/gpu1\/bert: launched pid (\d+)/.exec(stderr)![1]);
    assert.equal(environ(bertPid).CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, '0=1024M');
    assert.equal(environ(jsonLines<{ pid: number }>(launches)[0]!.pid).CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, undefined);

    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr.slice(-3000));
    for (const pid of pids()) assert.equal(alive(pid), false, `pid ${pid} is gone`);
    assert.doesNotMatch(stderr, /Cannot find MPS control daemon/, 'a clean stop reports no MPS error');
  } finally {
    for (const s of subs) s.unsubscribe();
    await bus.close();
    child.kill('SIGKILL');
    cleanup(pids(), [join(state, 'mps0', 'pipe'), join(state, 'mps2', 'pipe')]);
  }
});

test('nvidia workloads file - restart, memory and fixed-share fields are checked with the field to fix', async () => {
  const { parseNvidiaWorkloads } = await import('../../runners/host/nvidia/nvidia-backend.ts');
  const base = (svc: Record<string, unknown>, tr: Record<string, unknown>) => ({
    gpus: [{ gpu: 0, services: [{ id: 's', sloMs: 10, command: ['x'], latency: { source: 'stdout' }, ...svc }], trainings: [{ id: 't', command: ['y'], pacing: 'signal', ...tr }] }],
  });
  assert.doesNotThrow(() => parseNvidiaWorkloads(base({ restart: 'never', restartLimit: 0, memoryLimitMiB: 10 }, { mpsSharePct: 30, restart: 'on-failure', restartBackoffS: 2 })));
  assert.throws(() => parseNvidiaWorkloads(base({ restart: 'always' }, {})), /\/gpus\/0\/services\/0\/restart/);
  assert.throws(() => parseNvidiaWorkloads(base({}, { pacing: 'cooperative', mpsSharePct: 30 })), /trainings\/0\/mpsSharePct: a fixed share is for a job that cannot checkpoint/);
  assert.throws(() => parseNvidiaWorkloads(base({ memoryLimitMiB: 10, env: { CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: '0=1G' } }, {})), /give the GPU memory limit once/);
  assert.throws(() => parseNvidiaWorkloads(base({ memoryLimitMiB: 0 }, {})), /memoryLimitMiB/);
});
