import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { binariesFromEnv, MpsControl, NvidiaGpuDevice, PauseGuard, type NvidiaGpu } from '../../gpu/nvidia/index.ts';
import { FAKE_MPS, GPU0_UUID, sleep, tempDir, until } from './helpers.ts';

const GPU: NvidiaGpu = { index: 0, uuid: GPU0_UUID, name: 'NVIDIA H100 80GB HBM3', memoryTotalMiB: 81559, memoryUsedMiB: 1, utilizationPct: 0, migEnabled: false, computeMode: 'Default' };

test('nvidia device - Triton and vLLM services already running: latency comes from scraping their metrics', async () => {
  // Endpoints that finish 10 requests between scrapes: Triton at ~12 ms (duration counters), vLLM in its (0.3, 0.5] s bucket.
  let n = 0;
  const http = createServer((req, res) => {
    n += 10;
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    if (req.url === '/triton') {
      res.end(`nv_inference_request_success{model="resnet50",version="1"} ${n}\nnv_inference_request_duration_us{model="resnet50",version="1"} ${n * 12000}\n`);
    } else if (req.url === '/vllm') {
      res.end(`vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 0\nvllm:e2e_request_latency_seconds_bucket{le="0.5",model_name="m"} ${n}\nvllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} ${n}\nvllm:e2e_request_latency_seconds_count{model_name="m"} ${n}\n`);
    } else { res.statusCode = 404; res.end(); }
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const dir = tempDir('dev');
  const lines: string[] = [];
  const guard = new PauseGuard({ stateDir: dir, watchdog: false });
  guard.start();
  // No daemon runs on this pipe directory: the device only needs it to quit one on close.
  const mps = new MpsControl({ binaries: { ...binariesFromEnv({}), mpsControl: FAKE_MPS }, pipeDir: join(dir, 'pipe'), logDir: join(dir, 'log'), gpuUuid: GPU0_UUID });
  const t0 = Date.now();
  const device = new NvidiaGpuDevice({
    gpuId: 'gpu0', gpu: GPU, clock: () => Date.now() - t0, mps, guard, dir: join(dir, 'gpu0'), trainings: [], healthPeriodMs: 0, log: (l) => lines.push(l),
    initial: { mpsSharePct: 50, pacing: { mode: 'duty', duty: 0, periodMs: 200 }, trainingRunning: true },
    services: [
      { id: 'resnet50', latency: { kind: 'triton-duration', url: `${base}/triton`, model: 'resnet50', intervalMs: 100 } },
      { id: 'llm', latency: { kind: 'vllm', url: `${base}/vllm`, model: 'm', intervalMs: 100 } },
      { id: 'gone', latency: { kind: 'triton-summary', url: `${base}/nothing`, model: 'x', intervalMs: 100 } },
    ],
  });
  const workload: Array<{ serviceId: string; state: string; detail: string }> = [];
  try {
    device.start();
    device.onWorkload((e) => workload.push(e));
    assert.equal(device.info.backend, 'nvidia');
    await sleep(450);
    const triton = device.takeCompletions('resnet50');
    assert.ok(triton.completions.length >= 20, `${triton.completions.length} Triton requests`);
    assert.ok(triton.completions.every((c) => Math.abs(c.latencyMs - 12) < 1e-9));
    assert.equal(triton.arrivals, triton.completions.length);
    const llm = device.takeCompletions('llm').completions;
    assert.ok(llm.length >= 20 && llm.every((c) => c.latencyMs > 300 && c.latencyMs <= 500), `${llm.length} vLLM requests`);
    assert.equal(device.takeCompletions('llm').completions.length, 0, 'taken once');
    assert.deepEqual(device.takeCompletions('gone').completions, []);
    await until(() => lines.some((l) => /gpu0\/gone: scrape of .*\/nothing failed: HTTP 404; retrying every 100 ms/.test(l)), 2000, 'the failing scrape reported');
    assert.equal(lines.filter((l) => l.includes('/nothing failed')).length, 1, 'reported once, not every period');
    // An endpoint that does not answer is a service down (the GPU actor holds training at its safe duty), said once.
    assert.deepEqual(workload.map((e) => [e.serviceId, e.state]), [['gone', 'down']]);
    assert.match(workload[0]!.detail, /^service gone: its latency endpoint http:.*\/nothing does not answer \(HTTP 404\)$/);
    device.setArrivalRate('llm', 10);
    assert.ok(lines.some((l) => /rate and batch commands are ignored on a real GPU/.test(l)));
    assert.throws(() => device.takeCompletions('nope'), /no inference service nope on gpu0/);
  } finally {
    await device.close();
    guard.close();
    http.close();
  }
});

test('nvidia workloads file - the example validates as YAML, the same content as JSON, and mistakes name their field', async () => {
  const { loadNvidiaWorkloads, parseNvidiaWorkloads } = await import('../../runners/host/nvidia/nvidia-backend.ts');
  const example = loadNvidiaWorkloads(join(import.meta.dirname, '..', '..', 'workloads', 'nvidia-example.yaml'));
  assert.equal(example.gpus[0]!.gpu, 0);
  assert.equal(example.gpus[0]!.trainings[0]!.pacing, 'cooperative');
  assert.deepEqual(parseNvidiaWorkloads(JSON.parse(JSON.stringify(example))), example);
  const svc = { id: 's', sloMs: 10, latency: { source: 'stdout' } };
  assert.throws(() => parseNvidiaWorkloads({ gpus: [{ gpu: 0, services: [svc], trainings: [] }] }), /latency source stdout needs a command/);
  assert.throws(() => parseNvidiaWorkloads({ gpus: [{ gpu: 0, services: [{ ...svc, command: ['x'], latency: { source: 'vllm', url: 'ftp://x' } }], trainings: [] }] }), /\/gpus\/0\/services\/0\/latency/);
  assert.throws(() => parseNvidiaWorkloads({ policy: 'fastest', gpus: [{ gpu: 0, services: [{ ...svc, command: ['x'] }], trainings: [] }] }), /\/policy must be one of/);
});

test('host command - --backend nvidia is parsed, and needs a workloads file and real time', async () => {
  const { hostCommand, parseBackend } = await import('../../cli/host-command.ts');
  assert.deepEqual(parseBackend('nvidia'), { kind: 'nvidia' });
  assert.deepEqual(parseBackend('sim:3'), { kind: 'sim', gpus: 3 });
  assert.throws(() => parseBackend('cuda'), /--backend must be sim:N \(N simulated GPUs\) or nvidia/);
  await assert.rejects(hostCommand({ hostId: 'x', backend: 'nvidia', speed: '1', seed: '1' }), /--backend nvidia needs --workloads FILE/);
  await assert.rejects(hostCommand({ hostId: 'x', backend: 'nvidia', workloads: 'w.yaml', speed: '10', seed: '1' }), /--speed must be 1 with --backend nvidia/);
});
