import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

let provider: BasicTracerProvider | undefined;

/**
 * Wires the OpenTelemetry SDK once per process: real span and trace ids (so W3C context travels in NATS
 * headers), the async context manager, and any span processors given. Idempotent.
 */
export function setupTelemetry(serviceName: string, spanProcessors: SpanProcessor[] = []): BasicTracerProvider {
  if (provider) return provider;
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors,
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return provider;
}

/** Flushes and stops telemetry; never throws (telemetry must not break shutdown). */
export async function shutdownTelemetry(): Promise<void> {
  const p = provider;
  provider = undefined;
  try {
    await p?.shutdown();
  } catch {
    // exporters report their own failures
  }
}
