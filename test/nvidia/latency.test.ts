import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseLatencyLine, parsePrometheusText, PromLatencyTracker, samplesFromQuantiles } from '../../gpu/nvidia/index.ts';
import { FIXTURES } from './helpers.ts';

const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
const close = (a: number, b: number, eps = 1e-6) => Math.abs(a - b) <= eps;

test('latency - JSON lines per request and per window; other lines are not latency', () => {
  assert.deepEqual(parseLatencyLine('{"latencyMs": 12.5}'), [12.5]);
  assert.deepEqual(parseLatencyLine(' {"latency_s": 0.02, "id": 7} '), [20]);
  assert.deepEqual(parseLatencyLine('{"latencyUs": 1500}'), [1.5]);
  assert.deepEqual(parseLatencyLine('{"latenciesMs": [1, 2, "x", 3]}'), [1, 2, 3]);
  const window = parseLatencyLine('{"count": 100, "p50Ms": 10, "p99Ms": 30, "maxMs": 40}')!;
  assert.equal(window.length, 100);
  assert.equal(window.filter((v) => v > 30).length, 1, '1% past the p99');
  assert.ok(Math.max(...window) <= 40);
  assert.ok(close(window[49]!, 10, 0.5));
  assert.equal(parseLatencyLine('{"count": 3, "meanMs": 7}')!.join(), '7,7,7');
  for (const other of ['warming up', '{"iterations": 3}', '{"latencyMs": -1}', '[1,2]', '{bad json']) assert.equal(parseLatencyLine(other), null, other);
});

test('latency - samples spread over a distribution known by its quantiles', () => {
  assert.deepEqual(samplesFromQuantiles(4, [[0, 0], [1, 8]]), [1, 3, 5, 7]);
  assert.deepEqual(samplesFromQuantiles(0, [[0.5, 1]]), []);
  assert.deepEqual(samplesFromQuantiles(2, []), []);
});

test('latency - Prometheus text: labels with escapes, comments, +Inf', () => {
  const s = parsePrometheusText('# HELP x\nm{a="x\\"y",le="+Inf"} 3 1700000000\nn 2.5\nbad line here\n');
  assert.deepEqual(s, [{ name: 'm', labels: { a: 'x"y', le: '+Inf' }, value: 3 }, { name: 'n', labels: {}, value: 2.5 }]);
});

test('latency - Triton summary: the requests between two scrapes placed on its quantiles, one model only', () => {
  const t = new PromLatencyTracker('triton-summary', 'resnet50');
  const first = fixture('triton-metrics.txt');
  assert.deepEqual(t.ingest(first), [], 'the first scrape is the baseline');
  const second = first.replace('nv_inference_request_summary_us_count{model="resnet50",version="1"} 1000', 'nv_inference_request_summary_us_count{model="resnet50",version="1"} 1200');
  const samples = t.ingest(second);
  assert.equal(samples.length, 200);
  assert.ok(samples.every((v) => v >= 11 && v <= 21), 'within the p50..p99 the summary gives (ms)');
  assert.ok(close(samples[100]!, 11, 0.1), `median ${samples[100]}`);
  assert.deepEqual(t.ingest(second), [], 'no new request, no sample');
  assert.deepEqual(t.ingest(first), [], 'a counter that went down (server restart) is a new baseline');
});

test('latency - Triton duration counters: the mean of the new requests', () => {
  const t = new PromLatencyTracker('triton-duration', 'resnet50');
  const first = fixture('triton-metrics.txt');
  t.ingest(first);
  const second = first
    .replace('nv_inference_request_success{model="resnet50",version="1"} 1000', 'nv_inference_request_success{model="resnet50",version="1"} 1010')
    .replace('nv_inference_request_duration_us{model="resnet50",version="1"} 12000000', 'nv_inference_request_duration_us{model="resnet50",version="1"} 12250000');
  assert.deepEqual(t.ingest(second), Array(10).fill(25));
});

test('latency - vLLM e2e histogram deltas become samples inside their buckets', () => {
  const t = new PromLatencyTracker('vllm', 'meta-llama/Llama-3.1-8B-Instruct');
  const first = fixture('vllm-metrics.txt');
  t.ingest(first);
  // 10 more requests: 4 in (0.3, 0.5], 6 past the last finite bound 1.0.
  const second = first
    .replace('le="0.5",model_name="meta-llama/Llama-3.1-8B-Instruct"} 40.0', 'le="0.5",model_name="meta-llama/Llama-3.1-8B-Instruct"} 44.0')
    .replace('le="0.8",model_name="meta-llama/Llama-3.1-8B-Instruct"} 90.0', 'le="0.8",model_name="meta-llama/Llama-3.1-8B-Instruct"} 94.0')
    .replace('le="1.0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 100.0', 'le="1.0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 104.0')
    .replace('le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 100.0', 'le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 110.0');
  const samples = t.ingest(second);
  assert.equal(samples.length, 10);
  assert.equal(samples.filter((v) => v > 300 && v <= 500).length, 4);
  assert.equal(samples.filter((v) => v === 1000).length, 6);
  assert.deepEqual(new PromLatencyTracker('vllm', 'other-model').ingest(second), []);
});
