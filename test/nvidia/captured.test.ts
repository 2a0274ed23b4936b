// The parsers and the fake NVIDIA tools against output captured on a real GPU host (an H200, driver 580.159.04,
// by deploy/gpu-host/capture.sh; test/fixtures/nvidia/captured/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binariesFromEnv, MpsControl, NvidiaToolError, parseComputeApps, parseGpuModes, parseGpuQuery } from '../../gpu/nvidia/index.ts';
import { APP_FIELDS, GPU_FIELDS, GPU_MODE_FIELDS } from '../../gpu/nvidia/smi.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const H200 = join(ROOT, 'test', 'fixtures', 'nvidia', 'captured', 'h200-driver-580');
const FAKE_SMI = join(ROOT, 'test', 'fake-bin', 'nvidia-smi');
const FAKE_MPS = join(ROOT, 'test', 'fake-bin', 'nvidia-cuda-mps-control');
const UUID = 'GPU-bc4d54bb-bb6a-bd83-0b29-536213c3eaf7';
const read = (f: string) => readFileSync(join(H200, f), 'utf8');

test('captured h200 - the parsers read what nvidia-smi printed, with and without header and units', () => {
  for (const file of ['query-gpu.csv', 'query-gpu.noheader-nounits.csv']) {
    const { gpus, warnings } = parseGpuQuery(read(file));
    assert.deepEqual(warnings, [], file);
    assert.deepEqual(gpus.map((g) => [g.index, g.uuid, g.name, g.memoryTotalMiB, g.memoryUsedMiB, g.utilizationPct]), [[0, UUID, 'NVIDIA H200', 143771, 0, 0]], file);
  }
  assert.equal(parseGpuQuery(read('query-gpu.busy.csv')).gpus[0]!.memoryUsedMiB, 247);
  for (const file of ['query-gpu-modes.csv', 'query-gpu-modes.noheader-nounits.csv']) {
    assert.deepEqual(parseGpuModes(read(file)).get(UUID), { migEnabled: false, computeMode: 'Default' }, file);
  }
  for (const file of ['query-compute-apps.none.csv', 'query-compute-apps.none.noheader-nounits.csv']) {
    assert.deepEqual(parseComputeApps(read(file)), { apps: [], warnings: [] }, file);
  }
  for (const file of ['query-compute-apps.mps.csv', 'query-compute-apps.mps.noheader-nounits.csv']) {
    const { apps, warnings } = parseComputeApps(read(file));
    assert.deepEqual(warnings, [], file);
    // Under MPS the server and each client are listed, each with its own memory.
    assert.deepEqual(apps.map((a) => [a.gpuUuid, a.pid, a.processName, a.usedMemoryMiB]),
      [[UUID, 1894, 'nvidia-cuda-mps-server', 66], [UUID, 1799, 'python3', 172]], file);
  }
});

/** The fake nvidia-smi's stdout and exit status for one scenario. */
function fakeSmi(scenario: string, args: string[]): { out: string; code: number | null } {
  const r = spawnSync(FAKE_SMI, args, { env: { ...process.env, FAKE_NVIDIA_SMI_SCENARIO: join(H200, scenario) }, encoding: 'utf8' });
  return { out: r.stdout, code: r.status };
}

test('captured h200 - the fake nvidia-smi prints byte for byte what the real one printed', () => {
  const gpu = `--query-gpu=${GPU_FIELDS.join(',')}`;
  const modes = `--query-gpu=${GPU_MODE_FIELDS.join(',')}`;
  const apps = `--query-compute-apps=${APP_FIELDS.join(',')}`;
  const cases: Array<[string, string[], string]> = [
    ['smi-scenario-idle.json', [gpu, '--format=csv'], 'query-gpu.csv'],
    ['smi-scenario-idle.json', [gpu, '--format=csv,noheader,nounits'], 'query-gpu.noheader-nounits.csv'],
    ['smi-scenario-idle.json', [modes, '--format=csv'], 'query-gpu-modes.csv'],
    ['smi-scenario-idle.json', [modes, '--format=csv,noheader,nounits'], 'query-gpu-modes.noheader-nounits.csv'],
    ['smi-scenario-idle.json', [apps, '--format=csv'], 'query-compute-apps.none.csv'],
    ['smi-scenario-idle.json', [apps, '--format=csv,noheader,nounits'], 'query-compute-apps.none.noheader-nounits.csv'],
    ['smi-scenario-idle.json', ['-L'], 'list-gpus.txt'],
    ['smi-scenario-mps.json', [apps, '--format=csv'], 'query-compute-apps.mps.csv'],
    ['smi-scenario-mps.json', [apps, '--format=csv,noheader,nounits'], 'query-compute-apps.mps.noheader-nounits.csv'],
    ['smi-scenario-mps.json', [gpu, '--format=csv'], 'query-gpu.busy.csv'],
  ];
  for (const [scenario, args, file] of cases) {
    const { out, code } = fakeSmi(scenario, args);
    assert.equal(code, 0, `${file}: exit`);
    assert.equal(out, read(file), `${file}: the fake's output differs from the capture`);
  }
  // An unknown field: exit 2 (exit-codes.tsv) and the same two lines.
  const bad = fakeSmi('smi-scenario-idle.json', ['--query-gpu=index,no.such.field', '--format=csv']);
  assert.equal(bad.code, Number(/^query-gpu-invalid-field\t(\d+)/m.exec(read('exit-codes.tsv'))![1]));
  assert.equal(bad.out, read('query-gpu-invalid-field.txt'));
});

test('captured h200 - the fake MPS control daemon answers as the real one did, and MpsControl reads both', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpucolo-captured-'));
  const env: NodeJS.ProcessEnv = { ...process.env, CUDA_MPS_PIPE_DIRECTORY: join(dir, 'pipe'), CUDA_MPS_LOG_DIRECTORY: join(dir, 'log') };
  delete env.FAKE_MPS_MODE;
  const mps = new MpsControl({ binaries: { ...binariesFromEnv({}), mpsControl: FAKE_MPS }, pipeDir: join(dir, 'pipe'), logDir: join(dir, 'log'), gpuUuid: UUID, log: () => {} });
  try {
    // No daemon: the same line and exit status 1.
    const none = spawnSync(FAKE_MPS, [], { input: 'get_server_list\n', env, encoding: 'utf8' });
    assert.equal(`${none.stdout}${none.stderr}`, read('mps-no-daemon.txt'));
    assert.equal(none.status, Number(/^mps-no-daemon\t(\d+)/m.exec(read('exit-codes.tsv'))![1]));
    await assert.rejects(mps.command('get_server_list'), (e: NvidiaToolError) => e.kind === 'no-daemon');

    assert.equal(await mps.start(), 'started');
    assert.equal(await mps.command('get_server_list'), read('mps-server-list-empty.txt').trim());
    assert.equal(await mps.command('get_default_active_thread_percentage'), read('mps-default-pct.txt').trim());
    assert.equal(await mps.defaultActiveThreadPercentage(), 100);
    assert.equal(await mps.command('set_default_active_thread_percentage 50'), read('mps-set-default-pct.txt').trim());
    assert.equal(await mps.command('set_default_active_thread_percentage 100'), read('mps-set-default-pct-back.txt').trim());
    assert.equal(await mps.command('no_such_command'), read('mps-unknown-command.txt').trim());
    assert.equal(await mps.command('get_server_status 1'), read('mps-server-status-unknown.txt').trim());
    // What terminate_client answered for a pid the server holds no context of: a CUDA result code.
    assert.equal(read('mps-terminate-client-unknown.txt').trim(), '201');
    // And for a live client (a CUDA program under this daemon): 0, and the client is gone.
    const [answer, after] = read('mps-terminate-client.txt').split('\n');
    assert.equal(answer, '0');
    assert.match(after!, /after terminate_client: gone/);
    await mps.quit();
    assert.equal(await mps.isRunning(), false);
  } finally {
    await mps.quit().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
