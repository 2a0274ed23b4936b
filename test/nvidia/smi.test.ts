import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  binariesFromEnv, manageableGpus, NvidiaToolError, numberCell, parseComputeApps, parseGpuModes, parseGpuQuery,
  queryComputeApps, queryGpus, readCsvRows, splitCsvLine, textCell,
} from '../../gpu/nvidia/index.ts';
import { FAKE_SMI, FIXTURES, GPU0_UUID, GPU2_UUID, tempDir } from './helpers.ts';

const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const smi = (scenario: string, timeoutMs?: number) => ({
  binaries: { ...binariesFromEnv({}), nvidiaSmi: FAKE_SMI },
  env: { ...process.env, FAKE_NVIDIA_SMI_SCENARIO: join(FIXTURES, scenario) },
  ...(timeoutMs ? { timeoutMs } : {}),
});

test('nvidia csv - cells: units, placeholders, quotes', () => {
  assert.equal(numberCell('81559 MiB', { toMiB: true }), 81559);
  assert.equal(numberCell('80 GiB', { toMiB: true }), 81920);
  assert.equal(numberCell(' 12 % '), 12);
  assert.equal(numberCell('12%'), 12);
  for (const na of ['[N/A]', 'N/A', '[Not Supported]', 'Not Supported', '[Insufficient Permissions]', '', 'ERR!']) assert.equal(numberCell(na), null, na);
  assert.equal(textCell('[N/A]'), null);
  assert.throws(() => numberCell('Enabled'), /not a number/);
  assert.deepEqual(splitCsvLine('0, "A, B", 3'), ['0', 'A, B', '3']);
  // A comma inside the free-text column is merged back instead of shifting every later column.
  assert.deepEqual(readCsvRows('0, GPU-x, Tesla, K80, 100, 1, 2', ['index', 'uuid', 'name', 'memory.total', 'memory.used', 'utilization.gpu'], 'name').rows[0],
    ['0', 'GPU-x', 'Tesla, K80', '100', '1', '2']);
});

test('nvidia smi - the query-gpu formats (header and units, or neither) parse to the same GPUs', () => {
  const withHeader = parseGpuQuery(fixture('query-gpu.csv'));
  const bare = parseGpuQuery(fixture('query-gpu.noheader-nounits.csv'));
  assert.deepEqual(withHeader.warnings, []);
  assert.deepEqual(bare.warnings, []);
  assert.deepEqual(withHeader.gpus.map((g) => [g.index, g.uuid, g.name, g.memoryTotalMiB, g.memoryUsedMiB, g.utilizationPct]), [
    [0, GPU0_UUID, 'NVIDIA H100 80GB HBM3', 81559, 1, 0],
    [1, 'GPU-9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b', 'NVIDIA A100-SXM4-40GB', 40960, 13, null],
    [2, GPU2_UUID, 'NVIDIA GeForce RTX 3090', 24576, null, 3],
  ]);
  assert.deepEqual(bare.gpus, withHeader.gpus);
  const modes = parseGpuModes(fixture('query-gpu-modes.csv'));
  assert.deepEqual(modes.get(GPU0_UUID), { migEnabled: false, computeMode: 'Default' });
  assert.deepEqual(modes.get('GPU-9f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b'), { migEnabled: true, computeMode: 'Default' });
  assert.deepEqual(modes.get(GPU2_UUID), { migEnabled: null, computeMode: 'Prohibited' });
  assert.deepEqual(parseGpuQuery('No devices were found\n').gpus, []);
  const broken = parseGpuQuery('zero, GPU-x, A, 1, 1, 1\n');
  assert.equal(broken.gpus.length, 0);
  assert.match(broken.warnings[0]!, /ignored row .*zero/);
});

test('nvidia smi - compute apps, and "No running processes found" as an empty list', () => {
  const { apps, warnings } = parseComputeApps(fixture('query-compute-apps.csv'));
  assert.deepEqual(warnings, []);
  assert.deepEqual(apps.map((a) => [a.gpuUuid.slice(0, 12), a.pid, a.processName, a.usedMemoryMiB]), [
    ['GPU-4a8b4ea6', 4242, 'python3', 1234], ['GPU-4a8b4ea6', 4343, '/usr/bin/nvidia-cuda-mps-server', 30], ['GPU-9f1e2d3c', 5151, 'python3', null],
  ]);
  assert.deepEqual(parseComputeApps(fixture('query-compute-apps.none.txt')), { apps: [], warnings: [] });
  assert.deepEqual(parseComputeApps(''), { apps: [], warnings: [] });
});

test('nvidia smi - discovery through a fake nvidia-smi: MIG-enabled GPUs are skipped with the reason', async () => {
  const { gpus, warnings } = await queryGpus(smi('smi-scenario-default.json'));
  assert.deepEqual(warnings, []);
  assert.equal(gpus.length, 3);
  assert.equal(gpus[1]!.migEnabled, true);
  const { managed, skipped } = manageableGpus(gpus);
  assert.deepEqual(managed.map((g) => g.index), [0, 2]);
  assert.match(skipped[0]!.reason, /MIG is enabled/);
  const { apps } = await queryComputeApps(smi('smi-scenario-default.json'));
  assert.deepEqual(apps.map((a) => a.pid), [4242]);
  assert.deepEqual((await queryComputeApps(smi('smi-scenario-no-processes.json'))).apps, []);
});

test('nvidia smi - an nvidia-smi without the MIG fields still lists its GPUs, with a warning', async () => {
  const { gpus, warnings } = await queryGpus(smi('smi-scenario-minimal-fields.json'));
  assert.deepEqual(gpus.map((g) => [g.index, g.migEnabled]), [[0, null]]);
  assert.match(warnings[0]!, /is not a valid field to query/);
});

test('nvidia smi - failing, empty, hung and missing nvidia-smi each give a clear outcome', async () => {
  await assert.rejects(queryGpus(smi('smi-scenario-driver-failure.json')), (err: NvidiaToolError) =>
    err.kind === 'failed' && /exit 9/.test(err.message) && /couldn't communicate with the NVIDIA driver/.test(err.message));
  assert.deepEqual((await queryGpus(smi('smi-scenario-no-devices.json'))).gpus, []);
  const dir = tempDir('smi');
  writeFileSync(join(dir, 'hang.json'), JSON.stringify({ mode: 'hang', gpus: [] }));
  await assert.rejects(queryGpus({ ...smi('x'), env: { ...process.env, FAKE_NVIDIA_SMI_SCENARIO: join(dir, 'hang.json') }, timeoutMs: 700 }),
    (err: NvidiaToolError) => err.kind === 'hung' && /did not answer within 700 ms/.test(err.message));
  await assert.rejects(queryGpus({ binaries: { ...binariesFromEnv({}), nvidiaSmi: join(dir, 'no-such-nvidia-smi') } }),
    (err: NvidiaToolError) => err.kind === 'missing' && /GPUCOLO_NVIDIA_SMI/.test(err.message));
});

test('nvidia smi - binaries come from PATH by default, the environment or a flag overrides', () => {
  assert.deepEqual(binariesFromEnv({}), { nvidiaSmi: 'nvidia-smi', mpsControl: 'nvidia-cuda-mps-control' });
  assert.deepEqual(binariesFromEnv({ GPUCOLO_NVIDIA_SMI: '/opt/smi', GPUCOLO_MPS_CONTROL: '/opt/mps' }), { nvidiaSmi: '/opt/smi', mpsControl: '/opt/mps' });
  assert.equal(binariesFromEnv({ GPUCOLO_NVIDIA_SMI: '/opt/smi' }, { nvidiaSmi: '/flag/smi' }).nvidiaSmi, '/flag/smi');
});
