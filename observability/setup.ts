import { context, diag, DiagLogLevel, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, hostDetector, osDetector, processDetector, resourceFromAttributes, type Resource, type ResourceDetector } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { metricReadersFromEnv, spanProcessorsFromEnv, type Env } from './env-exporters.ts';
import { resetInstruments } from './metrics.ts';
import { TraceFileExporter } from './trace-file.ts';
import { GPUCOLO_VERSION } from './version.ts';

export interface TelemetryOptions {
  /** Extra span processors (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
  /** Append every span to this file as a JSON line (`--trace-file`). */
  traceFile?: string;
  /** Where OTEL_* are read (default process.env). */
  env?: Env;
  /** Where exporter warnings go (default stderr). */
  log?: (line: string) => void;
  /** `service.instance.id`: the host id of a host runner, the fleet id of a fleet process. */
  serviceInstanceId?: string;
}

/** The process detector less the command line: `--password` and credentials in `--nats-url` must not reach a metrics backend. */
const processWithoutArgs: ResourceDetector = {
  detect: (config) => {
    const { 'process.command_args': _args, 'process.command_line': _line, ...attributes } = processDetector.detect(config).attributes ?? {};
    return { attributes };
  },
};

const DETECTORS: Record<string, ResourceDetector> = { env: envDetector, host: hostDetector, os: osDetector, process: processWithoutArgs };

/**
 * The process's resource, as sdk-node builds it: the SDK defaults (`telemetry.sdk.*`), then ours
 * (`service.name` per role, `service.version`, `service.instance.id`), then what the detectors named in
 * OTEL_NODE_RESOURCE_DETECTORS find (default all: `host.name`, `host.id`, `os.*`, `process.*`, and
 * OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME, which win over ours).
 */
export function telemetryResource(serviceName: string, options: { serviceInstanceId?: string; env?: Env } = {}): Resource {
  const env = options.env ?? process.env;
  const names = (env.OTEL_NODE_RESOURCE_DETECTORS ?? 'all').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const detectors = names.includes('none') ? [] : names.includes('all') ? Object.values(DETECTORS) : names.flatMap((n) => (DETECTORS[n] ? [DETECTORS[n]] : []));
  const own = resourceFromAttributes({
    'service.name': serviceName,
    'service.version': GPUCOLO_VERSION,
    ...(options.serviceInstanceId ? { 'service.instance.id': options.serviceInstanceId } : {}),
  });
  const resource = defaultResource().merge(own).merge(detectResources({ detectors }));
  // host.id (the machine id) is read asynchronously; the Prometheus exporter does not wait for it.
  void resource.waitForAsyncAttributes?.().catch(() => undefined);
  return resource;
}

let provider: BasicTracerProvider | undefined;
let meterProvider: MeterProvider | undefined;
let fileProcessor: SpanProcessor | undefined;

const DIAG_LEVELS: Record<string, DiagLogLevel> = {
  none: DiagLogLevel.NONE, error: DiagLogLevel.ERROR, warn: DiagLogLevel.WARN, info: DiagLogLevel.INFO,
  debug: DiagLogLevel.DEBUG, verbose: DiagLogLevel.VERBOSE, all: DiagLogLevel.ALL,
};

/**
 * Wires the OpenTelemetry SDK once per process: real span and trace ids (so W3C context travels in NATS
 * headers), the async context manager, the exporters the OTEL_* variables choose, the trace file, and a
 * meter provider when a metrics exporter is chosen. Idempotent. Throws only when the trace file cannot be
 * opened.
 */
export function setupTelemetry(serviceName: string, options: TelemetryOptions = {}): BasicTracerProvider {
  if (provider) return provider;
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const warn = (m: string) => log(`telemetry: ${m}`);
  const level = DIAG_LEVELS[(env.OTEL_LOG_LEVEL ?? 'warn').trim().toLowerCase()] ?? DiagLogLevel.WARN;
  const text = (a: unknown): string => {
    if (typeof a === 'string') return a;
    const m = (a as { message?: unknown } | null)?.message;
    if (typeof m === 'string') return m;
    try { return JSON.stringify(a); } catch { return String(a); }
  };
  const diagLine = (...args: unknown[]) => warn(args.map(text).join(' ').replace(/\s+/g, ' ').slice(0, 500));
  diag.setLogger({ error: diagLine, warn: diagLine, info: diagLine, debug: diagLine, verbose: diagLine }, { logLevel: level, suppressOverrideMessage: true });

  const processors: SpanProcessor[] = [...spanProcessorsFromEnv(env, warn), ...(options.spanProcessors ?? [])];
  if (options.traceFile) {
    // Local and cheap, but still batched off the control loop; a large queue so a fast run loses nothing.
    fileProcessor = new BatchSpanProcessor(new TraceFileExporter(options.traceFile), {
      maxQueueSize: 65_536, maxExportBatchSize: 2048, scheduledDelayMillis: 500, exportTimeoutMillis: 10_000,
    });
    processors.push(fileProcessor);
  }
  const resource = telemetryResource(serviceName, { env, ...(options.serviceInstanceId ? { serviceInstanceId: options.serviceInstanceId } : {}) });
  provider = new BasicTracerProvider({ resource, spanProcessors: processors });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);

  const readers = metricReadersFromEnv(env, warn, log);
  if (readers.length) {
    meterProvider = new MeterProvider({ resource, readers });
    metrics.setGlobalMeterProvider(meterProvider);
    resetInstruments();
  }
  return provider;
}

/**
 * Flushes and stops telemetry within `timeoutMs`; never throws (telemetry must not break shutdown). The
 * trace file is flushed first and in full; a collector that does not answer only costs the timeout.
 */
export async function shutdownTelemetry(timeoutMs = 2000): Promise<void> {
  const p = provider;
  const mp = meterProvider;
  const fp = fileProcessor;
  provider = undefined;
  meterProvider = undefined;
  fileProcessor = undefined;
  const settle = (work: Promise<unknown> | undefined) => (work ?? Promise.resolve()).catch(() => undefined);
  await settle(fp?.shutdown());
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); timer.unref(); });
  await Promise.race([Promise.all([settle(p?.shutdown()), settle(mp?.shutdown())]), deadline]);
  clearTimeout(timer);
}
