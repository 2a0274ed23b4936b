import { createRequire } from 'node:module';
import { ConsoleMetricExporter, PeriodicExportingMetricReader, type MetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

// Exporter packages load on demand (synchronously: they are CommonJS), so a process without OTLP never
// pays for gRPC or protobuf. Each exporter reads its own OTEL_EXPORTER_OTLP_* endpoint, headers, timeout
// and compression from the environment.
const load = createRequire(import.meta.url);

export type Env = Record<string, string | undefined>;
export type OtlpProtocol = 'grpc' | 'http/protobuf' | 'http/json';
const PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/protobuf', 'http/json'];

const list = (raw: string | undefined): string[] =>
  [...new Set((raw ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean))];

/** OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. */
export function otlpProtocol(env: Env, signal: 'TRACES' | 'METRICS', warn: (m: string) => void = () => {}): OtlpProtocol {
  const raw = (env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
  if ((PROTOCOLS as readonly string[]).includes(raw)) return raw as OtlpProtocol;
  warn(`unsupported OTLP protocol ${JSON.stringify(raw)} (use grpc, http/protobuf or http/json): using http/protobuf`);
  return 'http/protobuf';
}

/**
 * The exporter names chosen for a signal: OTEL_{TRACES,METRICS}_EXPORTER as given (`none` wins). When the
 * variable is unset, `otlp` if an OTLP endpoint is configured for the signal, else nothing: a command run
 * with no OTEL_* configuration does not reach for a collector on localhost.
 */
export function exporterNames(env: Env, signal: 'TRACES' | 'METRICS'): string[] {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return [];
  const names = list(env[`OTEL_${signal}_EXPORTER`]);
  if (names.includes('none')) return [];
  if (names.length) return names;
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`] ? ['otlp'] : [];
}

function otlpSpanExporter(protocol: OtlpProtocol): SpanExporter {
  const pkg = protocol === 'grpc' ? 'grpc' : protocol === 'http/json' ? 'http' : 'proto';
  const { OTLPTraceExporter } = load(`@opentelemetry/exporter-trace-otlp-${pkg}`) as { OTLPTraceExporter: new () => SpanExporter };
  return new OTLPTraceExporter();
}

function otlpMetricExporter(protocol: OtlpProtocol): PushMetricExporter {
  const pkg = protocol === 'grpc' ? 'grpc' : protocol === 'http/json' ? 'http' : 'proto';
  const { OTLPMetricExporter } = load(`@opentelemetry/exporter-metrics-otlp-${pkg}`) as { OTLPMetricExporter: new () => PushMetricExporter };
  return new OTLPMetricExporter();
}

/**
 * Span processors for OTEL_TRACES_EXPORTER (otlp, console, none). Network exporters sit behind a
 * BatchSpanProcessor (OTEL_BSP_* honoured): a slow or unreachable collector drops spans, never blocks.
 */
export function spanProcessorsFromEnv(env: Env, warn: (m: string) => void = () => {}): SpanProcessor[] {
  const out: SpanProcessor[] = [];
  for (const name of exporterNames(env, 'TRACES')) {
    if (name === 'otlp') out.push(new BatchSpanProcessor(otlpSpanExporter(otlpProtocol(env, 'TRACES', warn))));
    else if (name === 'console') out.push(new SimpleSpanProcessor(new ConsoleSpanExporter()));
    else warn(`unsupported OTEL_TRACES_EXPORTER value ${JSON.stringify(name)} (use otlp, console or none): ignored`);
  }
  return out;
}

const intervalMs = (env: Env, key: string, fallback: number): number => {
  const n = Number(env[key]);
  return env[key] !== undefined && Number.isFinite(n) && n > 0 ? n : fallback;
};

/** Where the Prometheus exporter serves: OTEL_EXPORTER_PROMETHEUS_HOST (default 0.0.0.0) and _PORT (default 9464). */
export function prometheusEndpoint(env: Env, warn: (m: string) => void = () => {}): { host: string; port: number } {
  const host = (env.OTEL_EXPORTER_PROMETHEUS_HOST ?? '').trim() || '0.0.0.0';
  const raw = (env.OTEL_EXPORTER_PROMETHEUS_PORT ?? '').trim();
  const port = Number(raw);
  if (raw === '') return { host, port: 9464 };
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    warn(`OTEL_EXPORTER_PROMETHEUS_PORT must be a port number 1-65535, got ${JSON.stringify(raw)}: using 9464`);
    return { host, port: 9464 };
  }
  return { host, port };
}

/**
 * Metric readers for OTEL_METRICS_EXPORTER (otlp, prometheus, console, none). Push readers export every
 * OTEL_METRIC_EXPORT_INTERVAL ms (default 60000); prometheus serves OTEL_EXPORTER_PROMETHEUS_HOST:PORT
 * (default 0.0.0.0:9464) /metrics and says where on `info` once it listens.
 */
export function metricReadersFromEnv(env: Env, warn: (m: string) => void = () => {}, info: (line: string) => void = () => {}): MetricReader[] {
  const out: MetricReader[] = [];
  const exportIntervalMillis = intervalMs(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000);
  const exportTimeoutMillis = Math.min(exportIntervalMillis, intervalMs(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 30_000));
  for (const name of exporterNames(env, 'METRICS')) {
    if (name === 'otlp') {
      out.push(new PeriodicExportingMetricReader({ exporter: otlpMetricExporter(otlpProtocol(env, 'METRICS', warn)), exportIntervalMillis, exportTimeoutMillis }));
    } else if (name === 'console') {
      out.push(new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis, exportTimeoutMillis }));
    } else if (name === 'prometheus') {
      const { PrometheusExporter } = load('@opentelemetry/exporter-prometheus') as typeof import('@opentelemetry/exporter-prometheus');
      const { host, port } = prometheusEndpoint(env, warn);
      out.push(new PrometheusExporter({ host, port }, (err) => {
        if (err) warn(`prometheus exporter could not serve metrics on ${host}:${port}: ${(err as Error).message ?? err}`);
        else info(`metrics: http://${host}:${port}/metrics`);
      }));
    } else {
      warn(`unsupported OTEL_METRICS_EXPORTER value ${JSON.stringify(name)} (use otlp, prometheus, console or none): ignored`);
    }
  }
  return out;
}
