/**
 * Pure readers of inference latency: JSON lines printed by a workload, and Prometheus text from Triton
 * or vLLM turned into per-request latency samples (ms) by deltas between scrapes.
 */

/** Quantile points (q in 0..1, value in ms) of a window reported as a summary. */
export type QuantilePoints = Array<[number, number]>;

/**
 * `count` samples spread over a distribution known by a few quantiles: sample i sits at quantile
 * (i + 0.5) / count, linearly between the points. A summary with only a mean gives `count` means.
 */
export function samplesFromQuantiles(count: number, points: QuantilePoints): number[] {
  const pts = points.filter(([q, v]) => Number.isFinite(q) && Number.isFinite(v)).sort((a, b) => a[0] - b[0]);
  if (count <= 0 || pts.length === 0) return [];
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const q = (i + 0.5) / count;
    let v = pts[pts.length - 1]![1];
    if (q <= pts[0]![0]) v = pts[0]![1];
    else {
      for (let k = 1; k < pts.length; k++) {
        const [q1, v1] = pts[k]!;
        if (q <= q1) {
          const [q0, v0] = pts[k - 1]!;
          v = q1 === q0 ? v1 : v0 + ((v1 - v0) * (q - q0)) / (q1 - q0);
          break;
        }
      }
    }
    out.push(v);
  }
  return out;
}

const MS_KEYS: Array<[string, number]> = [
  ['latencyMs', 1], ['latency_ms', 1], ['latencyUs', 1e-3], ['latency_us', 1e-3], ['latencyS', 1e3], ['latency_s', 1e3],
];
const QUANTILE_KEYS: Array<[string, number]> = [
  ['minMs', 0], ['p50Ms', 0.5], ['p90Ms', 0.9], ['p95Ms', 0.95], ['p99Ms', 0.99], ['maxMs', 1],
];

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/**
 * Reads one stdout line of an inference workload. Per request: `{"latencyMs": 12.3}` (or `latency_ms`,
 * `latencyUs`, `latency_s`). Per window: `{"latenciesMs": [...]}` or
 * `{"count": 40, "p50Ms": .., "p95Ms": .., "p99Ms": .., "maxMs": ..}` (any of the quantiles, or `meanMs`).
 * Returns the latencies it stands for (ms), or null when the line is not a latency record.
 */
export function parseLatencyLine(line: string): number[] | null {
  const s = line.trim();
  if (!s.startsWith('{')) return null;
  let o: Record<string, unknown>;
  try {
    const v = JSON.parse(s) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    o = v as Record<string, unknown>;
  } catch {
    return null;
  }
  for (const [key, toMs] of MS_KEYS) {
    const v = num(o[key]);
    if (v !== undefined) return [v * toMs];
  }
  if (Array.isArray(o.latenciesMs)) return o.latenciesMs.map(num).filter((v): v is number => v !== undefined);
  const count = num(o.count);
  if (count !== undefined && Number.isInteger(count)) {
    const points: QuantilePoints = [];
    for (const [key, q] of QUANTILE_KEYS) {
      const v = num(o[key]);
      if (v !== undefined) points.push([q, v]);
    }
    if (points.length === 0 && num(o.meanMs) !== undefined) points.push([0.5, num(o.meanMs)!]);
    if (points.length > 0) return samplesFromQuantiles(count, points);
  }
  return null;
}

/** One Prometheus sample: metric name, labels, value. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (comments skipped, timestamps ignored, escapes in label values honoured). */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
      let lm: RegExpExecArray | null;
      while ((lm = re.exec(m[3])) !== null) labels[lm[1]!] = lm[2]!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    }
    const v = m[4]!;
    const value = v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v);
    if (Number.isNaN(value)) continue;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

const matches = (s: PromSample, name: string, model: string | undefined, modelLabels: string[]) =>
  s.name === name && (model === undefined || modelLabels.some((l) => s.labels[l] === model));

const sum = (samples: PromSample[], name: string, model: string | undefined, modelLabels: string[]) =>
  samples.filter((s) => matches(s, name, model, modelLabels)).reduce((a, s) => a + s.value, 0);

export type PromLatencyKind = 'triton-summary' | 'triton-duration' | 'vllm';

/**
 * Turns successive scrapes of one service's metrics into latency samples: the requests finished between
 * two scrapes, placed on the distribution the metrics give. The first scrape only sets the baseline; a
 * counter that went down (server restart) starts a new baseline.
 */
export class PromLatencyTracker {
  private last: Map<string, number> | undefined;
  constructor(readonly kind: PromLatencyKind, readonly model?: string) {}

  /** Latencies (ms) of the requests finished since the previous scrape. */
  ingest(text: string): number[] {
    const samples = parsePrometheusText(text);
    const now = this.counters(samples);
    const prev = this.last;
    this.last = now;
    if (!prev) return [];
    for (const [k, v] of now) if (v < (prev.get(k) ?? 0)) return [];
    const delta = (k: string) => Math.max(0, (now.get(k) ?? 0) - (prev.get(k) ?? 0));
    const round = (n: number) => Math.round(n);

    if (this.kind === 'triton-summary') {
      const n = round(delta('count'));
      const points: QuantilePoints = samples
        .filter((s) => matches(s, 'nv_inference_request_summary_us', this.model, ['model']) && s.labels.quantile !== undefined && Number.isFinite(s.value))
        .map((s) => [Number(s.labels.quantile), s.value / 1000] as [number, number]);
      if (points.length === 0 && n > 0) return samplesFromQuantiles(n, [[0.5, delta('sum') / n / 1000]]);
      return samplesFromQuantiles(n, mergeQuantiles(points));
    }
    if (this.kind === 'triton-duration') {
      const n = round(delta('count'));
      return n > 0 ? samplesFromQuantiles(n, [[0.5, delta('sum') / n / 1000]]) : [];
    }
    // vLLM: histogram buckets (seconds), cumulative in `le`.
    const bounds = [...now.keys()].filter((k) => k.startsWith('le:')).map((k) => k.slice(3));
    const finite = bounds.map(Number).filter(Number.isFinite).sort((a, b) => a - b);
    const out: number[] = [];
    let lower = 0;
    let below = 0;
    for (const le of [...finite, Infinity]) {
      const key = `le:${le === Infinity ? '+Inf' : bounds.find((b) => Number(b) === le)}`;
      const cumulative = delta(key);
      const n = round(cumulative - below);
      below = Math.max(below, cumulative);
      // Requests past the last finite bound are counted at that bound: the best the histogram knows.
      const hi = le === Infinity ? lower : le;
      for (let i = 0; i < n; i++) out.push((lower + ((hi - lower) * (i + 0.5)) / n) * 1000);
      lower = le === Infinity ? lower : le;
    }
    return out;
  }

  private counters(samples: PromSample[]): Map<string, number> {
    const m = new Map<string, number>();
    if (this.kind === 'triton-summary') {
      m.set('count', sum(samples, 'nv_inference_request_summary_us_count', this.model, ['model']));
      m.set('sum', sum(samples, 'nv_inference_request_summary_us_sum', this.model, ['model']));
    } else if (this.kind === 'triton-duration') {
      m.set('count', sum(samples, 'nv_inference_request_success', this.model, ['model']));
      m.set('sum', sum(samples, 'nv_inference_request_duration_us', this.model, ['model']));
    } else {
      const labels = ['model_name', 'model'];
      for (const s of samples) {
        if (!matches(s, 'vllm:e2e_request_latency_seconds_bucket', this.model, labels) || s.labels.le === undefined) continue;
        const key = `le:${s.labels.le}`;
        m.set(key, (m.get(key) ?? 0) + s.value);
      }
      m.set('count', sum(samples, 'vllm:e2e_request_latency_seconds_count', this.model, labels));
    }
    return m;
  }
}

/** Several label sets (model versions) give several values per quantile: keep the worst. */
function mergeQuantiles(points: QuantilePoints): QuantilePoints {
  const byQ = new Map<number, number>();
  for (const [q, v] of points) byQ.set(q, Math.max(byQ.get(q) ?? -Infinity, v));
  return [...byQ.entries()];
}
