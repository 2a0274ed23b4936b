import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseProfile } from '../../gpu/model/index.ts';
import { errPct, tempDir } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'gpucolo.mjs');
const FAKE_BIN = join(ROOT, 'test', 'fake-bin');
const STANDIN = join(ROOT, 'test', 'fixtures', 'nvidia', 'workloads');
const GPU0_UUID = 'GPU-4a8b4ea6-0c0f-7a3c-5f0e-1d2b3c4d5e6f';

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGINT'); reject(new Error(`calibrate ran past ${timeoutMs} ms\n${stderr.slice(-3000)}`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/**
 * The plant the stand-ins follow: fast enough for a test (60 ms iterations, 1.5 s restarts), slow enough that timer
 * lateness (a millisecond or two per batch on a busy machine) stays small against a batch (14-28 ms alone), with an
 * interference exponent that keeps I at 25% (0.55) well above that lateness.
 */
const PLANT = {
  name: 'standin-plant', source: 'test/calibrate/nvidia.test.ts', gpu: { name: 'stand-in', memoryMiB: 1024 },
  inference: { model: 'stand-in', fixedMs: 12, perItemMs: 2, jitterSigma: 0.05 },
  interference: { mpsAt100Pct: 2.5, mpsShareExponent: 1.1, timeSlicing: 0.7 },
  training: { model: 'stand-in', iterAloneMs: 60, shareExponent: 0.7, slowdownWhileInferring: 0.1, timeSlicingSpeed: 0.6 },
  mpsRestartMs: 1500, sleepChangeMs: 2,
};

test('calibrate --backend nvidia - end to end with the stand-in NVIDIA tools and workloads that follow a profile', async () => {
  const dir = tempDir('caln');
  const profileFile = join(dir, 'plant.json');
  writeFileSync(profileFile, JSON.stringify(PLANT));
  const env = { FAKE_PLANT_PROFILE: profileFile, FAKE_PLANT_DIR: join(dir, 'plant') };
  const workloads = join(dir, 'w.json');
  writeFileSync(workloads, JSON.stringify({
    gpus: [{
      gpu: 0,
      services: [{ id: 'svc', sloMs: 50, command: [process.execPath, join(STANDIN, 'plant-inference.mjs'), '--batch', '{batch}'], env, latency: { source: 'stdout' } }],
      trainings: [{ id: 'job', command: [process.execPath, join(STANDIN, 'plant-training.mjs')], env, pacing: 'cooperative' }],
    }],
  }));
  const plan = join(dir, 'plan.json');
  writeFileSync(plan, JSON.stringify({
    batches: [1, 8], batch: 4, shares: [100, 50, 25], duties: [0, 0.5], dutyPeriodMs: 200, aloneWindowMs: 1000, noiseWindowMs: 1500,
    colocWindowMs: 1500, iterWindowMs: 3000, settleMs: 300, pollMs: 20, restartTimeoutMs: 15_000, budgetMs: 120_000,
  }));
  const out = join(dir, 'fit.json');
  const log = join(dir, 'nvidia.log');
  const state = join(dir, 'state');
  const r = await run(['calibrate', '--backend', 'nvidia', '--workloads', workloads, '--plan', plan, '--out', out, '--state-dir', state, '--json'],
    { ...process.env, PATH: `${FAKE_BIN}:${process.env.PATH}`, FAKE_NVIDIA_LOG: log }, 120_000);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
  const fit = parseProfile(JSON.parse(readFileSync(out, 'utf8')), out);
  assert.equal(fit.gpu.name, 'NVIDIA H100 80GB HBM3', 'the GPU as nvidia-smi names it');
  assert.equal(fit.gpu.memoryMiB, 81559);

  // The stand-ins run on timers of a shared machine, so the tolerances are wider than on the simulated GPU; each
  // still fails if a measurement or the plumbing is wrong (a share not applied, pacing ignored, no interference).
  const p = summary.parameters;
  const e = {
    'I(100%)': errPct(p.mpsAt100Pct, 2.5), 'interference exponent': errPct(p.interferenceExponent, 1.1),
    'training share exponent': errPct(p.shareExponent, 0.7), 'iteration alone': errPct(p.iterAloneMs, 60), perItemMs: errPct(p.perItemMs, 2),
  };
  console.log(`stand-in plant recovered: ${Object.entries(e).map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${v.toFixed(1)}%`).join(', ')}, restart ${p.mpsRestartMs} ms (1500 ms + stop and process start)`);
  // Lateness adds a near-constant time to every batch, which pulls I(100%) and perItemMs down most (seen: -15 to -22%).
  const bound: Record<string, number> = { 'I(100%)': 35, perItemMs: 35 };
  for (const [k, v] of Object.entries(e)) assert.ok(Math.abs(v) < (bound[k] ?? 30), `${k} off by ${v.toFixed(1)}%`);
  // A restart is the program's own start-up (1.5 s) plus the stop protocol and the process start around it.
  assert.ok(p.mpsRestartMs >= 1500 && p.mpsRestartMs < 1500 * 1.8, `restart ${p.mpsRestartMs} ms`);

  // Cooperative pacing reached the job through its lease: half the time asleep gives inference room at every share.
  const coloc = (share: number, duty: number) => summary.points.find((x: { kind: string; setting: string }) => x.kind === 'next to training' && x.setting === `share ${share}%, duty ${duty}, mean`).measured;
  for (const s of [100, 50, 25]) assert.ok(coloc(s, 0.5) < coloc(s, 0), `share ${s}%: duty 0.5 ${coloc(s, 0.5)} ms vs no sleep ${coloc(s, 0)} ms`);

  // The job was relaunched with each share in turn (its checkpoint lines), inference at each batch size.
  const ckpt = readFileSync(join(state, 'gpu0', 'job.ckpt'), 'utf8').trim().split('\n').map((l) => Number(/share (\d+)/.exec(l)![1]));
  assert.deepEqual(ckpt, [100, 50, 25, 100, 50, 25]);
  const batches = [...r.stderr.matchAll(/gpu0\/svc: launched pid \d+: .*plant-inference\.mjs --batch (\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(batches, [1, 8, 4]);

  // Its own MPS daemon on the GPU by UUID, quit at the end; no process left behind.
  const calls = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tool: string; cmd?: string; env?: Record<string, string> });
  const start = calls.find((c) => c.tool === 'mps' && c.cmd === '-d')!;
  assert.equal(start.env!.CUDA_VISIBLE_DEVICES, GPU0_UUID);
  assert.ok(start.env!.CUDA_MPS_PIPE_DIRECTORY!.startsWith(state));
  assert.equal(calls.filter((c) => c.tool === 'mps').pop()!.cmd, 'quit');
  const pids = [...r.stderr.matchAll(/launched pid (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 9, 'three inference and six training launches');
  assert.deepEqual(pids.filter(alive), [], 'every launched process is gone');
});

test('calibrate --backend nvidia - a workloads file calibrate cannot use is refused before anything starts', async () => {
  const dir = tempDir('calw');
  const w = (gpus: unknown) => { const f = join(dir, `w${Math.random().toString(36).slice(2)}.json`); writeFileSync(f, JSON.stringify({ gpus })); return f; };
  const job = { id: 'job', command: ['true'], pacing: 'cooperative' };
  const cases: [string, RegExp][] = [
    [w([{ gpu: 0, services: [{ id: 's', sloMs: 5, latency: { source: 'triton', url: 'http://127.0.0.1:1/metrics', model: 'm' } }], trainings: [job] }]), /needs an inference service with a command/],
    [w([{ gpu: 0, services: [{ id: 's', sloMs: 5, command: ['x'], latency: { source: 'stdout' } }], trainings: [] }]), /needs a training job/],
    [w([{ gpu: 0, services: [{ id: 's', sloMs: 5, command: ['x'], latency: { source: 'vllm', url: 'http://127.0.0.1:1/metrics' } }], trainings: [job] }]), /calibrate reads latency from stdout/],
    [w([{ gpu: 7, services: [{ id: 's', sloMs: 5, command: ['x'], latency: { source: 'stdout' } }], trainings: [job] }]), /no GPU 7 on this host/],
  ];
  for (const [file, want] of cases) {
    const r = await run(['calibrate', '--backend', 'nvidia', '--workloads', file, '--out', join(dir, 'o.json'), '--state-dir', join(dir, 'st')], { ...process.env, PATH: `${FAKE_BIN}:${process.env.PATH}` }, 30_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, want);
  }
});
