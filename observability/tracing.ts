import { context, isSpanContextValid, propagation, ProxyTracerProvider, trace, type Context, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

// Library code depends only on the API; the SDK is wired once at the process edge (observability/setup.ts).
const w3c = new W3CTraceContextPropagator();

/** The tracer every gpucolo component uses. */
export function tracer(): Tracer {
  return trace.getTracer('gpucolo', '0.1.0');
}

/**
 * Whether a span started now could be recorded: a tracer provider is registered (by setup.ts, or by whoever embeds
 * us). Without one every tracer is the API's no-op, which records nothing.
 */
export function tracerRegistered(): boolean {
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegateTracer('gpucolo', '0.1.0') !== undefined;
}

/** Whether `ctx` carries a valid span context (a trace a span started under it would continue). */
export function carriesTrace(ctx: Context): boolean {
  const sc = trace.getSpanContext(ctx);
  return sc !== undefined && isSpanContextValid(sc);
}

/** Writes the W3C trace context of `ctx` into a plain header map. */
export function injectTraceContext(ctx: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  w3c.inject(ctx, carrier, { set: (c, k, v) => { c[k] = v; } });
  return carrier;
}

/** Reads a W3C trace context from header getters into a Context (the active one when absent). */
export function extractTraceContext(get: (key: string) => string | undefined): Context {
  return w3c.extract(context.active(), {}, {
    get: (_c, key) => get(key),
    keys: () => ['traceparent', 'tracestate'],
  });
}

export { propagation };
