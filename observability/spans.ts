import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import { subjects, type GpuStatusEvent } from '../schemas/index.ts';
import { carriesTrace, tracer, tracerRegistered } from './tracing.ts';

/**
 * Span names: the contract between the runtime, `explain` and `report`. Messaging spans are named as the
 * OTel messaging conventions say, `{operation} {destination template}` (e.g. `send
 * colo.v1.{host}.{gpu}.cmd`); what they carry is in `gpucolo.action` / `gpucolo.message.type`.
 */
export const SPAN = {
  /** `gpucolo.decision.inner`, `.outer` or `.safety`: one knob change and why. */
  decisionPrefix: 'gpucolo.decision.',
  /** Kind of `commandSpan`: a command to a training actor, child of its decision (`gpucolo.command.kind` = actuate). */
  actuatePrefix: 'gpucolo.actuate ',
  /** Consumer side of a command (`process <template>`). */
  handlePrefix: 'gpucolo.handle ',
  /** Kind of `commandSpan`: a command sent by an operator, the demo or the fleet (`gpucolo.command.kind` = command). */
  commandPrefix: 'gpucolo.command ',
  /** The operation of a latency window put on the bus (`publish colo.v1.{host}.{gpu}.inf.{service}.window`). */
  window: 'publish',
  /** Once per status period per GPU: the time series of `report`. */
  status: 'gpucolo.gpu.status',
  /** A fleet consolidation plan: the GPU commands it causes are its descendants. */
  fleetPlan: 'gpucolo.fleet.plan',
} as const;

/** Every subject pattern of the wire, with `{host}`-style placeholders: the low-cardinality span destination. */
const TEMPLATES: readonly string[] = [
  subjects.inferenceWindow('{host}', '{gpu}', '{service}'), subjects.inferenceCommand('{host}', '{gpu}', '{service}'),
  subjects.trainingProgress('{host}', '{gpu}', '{job}'), subjects.trainingCommand('{host}', '{gpu}', '{job}'),
  subjects.gpuCommand('{host}', '{gpu}'), subjects.placementCommand('{host}', '{gpu}'),
  subjects.fleetPlan(), subjects.fleetLeader(),
  subjects.gpuStatus('{host}', '{gpu}'), subjects.gpuDecision('{host}', '{gpu}'), subjects.gpuSafety('{host}', '{gpu}'),
  subjects.gpuFreed('{host}', '{gpu}'), subjects.gpuClaimed('{host}', '{gpu}'),
  subjects.busRejected('{host}'), subjects.hostLifecycle('{host}'),
];
const MATCHERS = TEMPLATES.map((t) => ({
  template: t,
  re: new RegExp(`^${t.split('.').map((tok) => (/^\{\w+\}$/.test(tok) ? '[^.]+' : tok.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('\\.')}$`),
}));

/** The subject's pattern (`colo.v1.h0.gpu1.cmd` -> `colo.v1.{host}.{gpu}.cmd`); undefined for a subject off the tree (an inbox). */
export function subjectTemplate(subject: string): string | undefined {
  return MATCHERS.find((m) => m.re.test(subject))?.template;
}

let server: { address: string; port?: number } | undefined;

/**
 * Names the NATS server this process talks to (`server.address`, `server.port` on messaging spans); call
 * after connecting and again after a reconnect. Accepts `nats://host:port`, `host:port` or `host`.
 */
export function setMessagingServer(url: string | undefined): void {
  const first = url?.split(',')[0]?.trim();
  if (!first) { server = undefined; return; }
  try {
    const u = new URL(/^[a-z]+:\/\//i.test(first) ? first : `nats://${first}`);
    server = { address: u.hostname.replace(/^\[|\]$/g, ''), ...(u.port ? { port: Number(u.port) } : { port: 4222 }) };
  } catch {
    server = { address: first };
  }
}

/** Attribute keys (beyond the OTel messaging conventions). */
export const ATTR = {
  host: 'gpucolo.host',
  gpu: 'gpucolo.gpu',
  policy: 'gpucolo.policy',
  tier: 'gpucolo.tier',
  knob: 'gpucolo.knob',
  oldValue: 'gpucolo.knob.old_value',
  newValue: 'gpucolo.knob.new_value',
  reason: 'gpucolo.reason',
  termPrefix: 'gpucolo.term.',
  drivingService: 'gpucolo.driving_service',
  deviceMs: 'gpucolo.device_ms',
  service: 'gpucolo.service',
  job: 'gpucolo.job',
  input: {
    service: 'gpucolo.input.service',
    sloMs: 'gpucolo.input.slo_ms',
    p50Ms: 'gpucolo.input.p50_ms',
    p95Ms: 'gpucolo.input.p95_ms',
    p99Ms: 'gpucolo.input.p99_ms',
    meanMs: 'gpucolo.input.mean_ms',
    count: 'gpucolo.input.count',
    rateRps: 'gpucolo.input.rate_rps',
    windows: 'gpucolo.input.windows',
    trainingItersPerSec: 'gpucolo.input.training_its',
  },
  status: {
    state: 'gpucolo.state',
    mpsSharePct: 'gpucolo.mps_share_pct',
    pacingMode: 'gpucolo.pacing.mode',
    sleepDuty: 'gpucolo.sleep_duty',
    sleepMsPerIteration: 'gpucolo.sleep_ms_per_iteration',
    trainingRunning: 'gpucolo.training.running',
    trainingItersPerSec: 'gpucolo.training.its',
    trainingIterations: 'gpucolo.training.iterations',
    services: 'gpucolo.services',
    p99Ms: 'gpucolo.service.p99_ms',
    sloMs: 'gpucolo.service.slo_ms',
    rateRps: 'gpucolo.service.rate_rps',
    attainment: 'gpucolo.service.attainment',
  },
  fleet: {
    planId: 'gpucolo.fleet.plan_id',
    gpusInUse: 'gpucolo.fleet.gpus_in_use',
    gpusFreed: 'gpucolo.fleet.gpus_freed',
    gpusTotal: 'gpucolo.fleet.gpus_total',
    /** string[] of `host/gpu` the plan acts on. */
    targets: 'gpucolo.fleet.targets',
    actions: 'gpucolo.fleet.actions',
  },
} as const;

/** OTel messaging attributes for a NATS subject (semantic conventions; `messaging.system` for older backends). */
export function messagingAttributes(subject: string, operation: 'send' | 'process' | 'receive', name: string, messageId?: string): Attributes {
  const a: Attributes = {
    'messaging.system.name': 'nats',
    'messaging.system': 'nats',
    'messaging.destination.name': subject,
    'messaging.operation.type': operation,
    'messaging.operation.name': name,
  };
  const template = subjectTemplate(subject);
  if (template) a['messaging.destination.template'] = template;
  if (server) {
    a['server.address'] = server.address;
    if (server.port !== undefined) a['server.port'] = server.port;
  }
  if (messageId) a['messaging.message.id'] = messageId;
  return a;
}

/** `{operation} {destination}`: the template when the subject has one, else the subject itself. */
export function messagingSpanName(operationName: string, subject: string): string {
  return `${operationName} ${subjectTemplate(subject) ?? subject}`;
}

/** A knob change as the control laws report it (structurally control's `Decision`). */
export interface DecisionLike {
  knob: string;
  oldValue: number;
  newValue: number;
  reason: string;
  terms: Record<string, number>;
  drivingServiceId?: string;
}

/** What the decision consumed: the driving (or tightest) service's latest window, and training progress. */
export interface DecisionInputs {
  serviceId: string;
  sloMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  count: number;
  rateRps: number;
  /** Latency windows received since the tier's last decision. */
  windows: number;
  trainingItersPerSec: number;
}

export interface DecisionSpanOptions {
  host: string;
  gpu: string;
  policy: string;
  tier: 'inner' | 'outer' | 'safety';
  decision: DecisionLike;
  deviceMs: number;
  inputs?: DecisionInputs;
  /** Links to the telemetry (latency windows) the decision consumed. */
  links?: Link[];
  parent?: Context;
}

/** Starts the span of one knob change: inputs, the controller's terms, old and new value, the rule. */
export function decisionSpan(o: DecisionSpanOptions): Span {
  const d = o.decision;
  const attrs: Attributes = {
    [ATTR.host]: o.host, [ATTR.gpu]: o.gpu, [ATTR.policy]: o.policy, [ATTR.tier]: o.tier,
    [ATTR.knob]: d.knob, [ATTR.oldValue]: d.oldValue, [ATTR.newValue]: d.newValue, [ATTR.reason]: d.reason,
    [ATTR.deviceMs]: o.deviceMs,
  };
  if (d.drivingServiceId) attrs[ATTR.drivingService] = d.drivingServiceId;
  for (const [k, v] of Object.entries(d.terms)) if (typeof v === 'number' && Number.isFinite(v)) attrs[`${ATTR.termPrefix}${k}`] = v;
  const i = o.inputs;
  if (i) {
    Object.assign(attrs, {
      [ATTR.input.service]: i.serviceId, [ATTR.input.sloMs]: i.sloMs, [ATTR.input.p50Ms]: i.p50Ms, [ATTR.input.p95Ms]: i.p95Ms,
      [ATTR.input.p99Ms]: i.p99Ms, [ATTR.input.meanMs]: i.meanMs, [ATTR.input.count]: i.count, [ATTR.input.rateRps]: i.rateRps,
      [ATTR.input.windows]: i.windows, [ATTR.input.trainingItersPerSec]: i.trainingItersPerSec,
    });
  }
  return tracer().startSpan(`${SPAN.decisionPrefix}${o.tier}`, { attributes: attrs, links: o.links ?? [] }, o.parent ?? context.active());
}

/**
 * Starts the span of a command sent over the bus (producer side), named `send <subject template>`; `kind`
 * is `SPAN.actuatePrefix` (a decision's actuation) or `SPAN.commandPrefix`. Pass `trace.setSpan(ctx, span)`
 * to the request.
 */
export function commandSpan(kind: string, subject: string, action: string, attributes: Attributes = {}, parent: Context = context.active()): Span {
  return tracer().startSpan(messagingSpanName('send', subject), {
    kind: SpanKind.PRODUCER,
    attributes: {
      ...messagingAttributes(subject, 'send', 'send'), 'gpucolo.action': action,
      'gpucolo.command.kind': kind === SPAN.actuatePrefix ? 'actuate' : 'command', ...attributes,
    },
  }, parent);
}

/** Runs a command handler inside a consumer span (`process <subject template>`) whose parent is the sender's context. */
export async function withHandleSpan<T>(subject: string, type: string, messageId: string, parent: Context, fn: () => Promise<T> | T): Promise<T> {
  // No tracer registered and no trace to continue: the span would be the API's no-op, with an invalid context,
  // and nothing would be recorded or propagated from it. The handler runs as it is, without the span, its
  // attributes and the context built for it on every command handled.
  if (!carriesTrace(parent) && !tracerRegistered()) return await fn();
  // The messaging attributes' own (new) object, the message type added last: no copy of it per command handled.
  const attributes = messagingAttributes(subject, 'process', 'process', messageId);
  attributes['gpucolo.message.type'] = type;
  const span = tracer().startSpan(messagingSpanName('process', subject), { kind: SpanKind.CONSUMER, attributes }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), fn);
  } catch (err) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** Marks a span failed with the error's message. */
export function failSpan(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message ?? String(err) });
}

/** A zero-length span per status period: the time series `report` draws. */
export function statusSpan(s: GpuStatusEvent): void {
  const its = s.trainings.reduce((a, t) => a + t.itersPerSec, 0);
  const attrs: Attributes = {
    [ATTR.host]: s.host, [ATTR.gpu]: s.gpu, [ATTR.policy]: s.policy, [ATTR.deviceMs]: s.tMs,
    [ATTR.status.state]: s.state, [ATTR.status.mpsSharePct]: s.mpsSharePct, [ATTR.status.pacingMode]: s.pacing.mode,
    [ATTR.status.trainingRunning]: s.trainingRunning, [ATTR.status.trainingItersPerSec]: its,
    [ATTR.status.trainingIterations]: s.trainings.reduce((a, t) => a + t.iterations, 0),
    [ATTR.status.services]: s.services.map((x) => x.serviceId),
    [ATTR.status.p99Ms]: s.services.map((x) => x.p99Ms),
    [ATTR.status.sloMs]: s.services.map((x) => x.sloMs),
    [ATTR.status.rateRps]: s.services.map((x) => x.rateRps),
    [ATTR.status.attainment]: s.services.map((x) => (x.sloWindows > 0 ? x.sloWindowsMet / x.sloWindows : 1)),
  };
  if (s.pacing.mode === 'duty') attrs[ATTR.status.sleepDuty] = s.trainingRunning ? s.pacing.duty : 1;
  else attrs[ATTR.status.sleepMsPerIteration] = s.pacing.sleepMs;
  tracer().startSpan(SPAN.status, { attributes: attrs, root: true }).end();
}

/** Starts the producer span of a latency window put on the bus; returns the context to publish it with. */
export function windowSpanContext(host: string, gpu: string, serviceId: string, subject: string, w: { seq: number; p99Ms: number; count: number; tMs: number }): Context {
  const span = tracer().startSpan(messagingSpanName(SPAN.window, subject), {
    kind: SpanKind.PRODUCER, root: true,
    attributes: {
      ...messagingAttributes(subject, 'send', SPAN.window), [ATTR.host]: host, [ATTR.gpu]: gpu, [ATTR.service]: serviceId,
      'gpucolo.window.seq': w.seq, 'gpucolo.window.p99_ms': w.p99Ms, 'gpucolo.window.count': w.count, [ATTR.deviceMs]: w.tMs,
    },
  });
  span.end();
  return trace.setSpan(context.active(), span);
}

export interface FleetPlanSpanOptions {
  planId: string;
  gpusTotal: number;
  gpusInUse: number;
  gpusFreed: number;
  /** `host/gpu` of every GPU the plan acts on. */
  targets: string[];
  actions: number;
  reason: string;
  attributes?: Attributes;
}

/**
 * Starts the span of a fleet plan. Send the plan's GPU commands with `trace.setSpan(context.active(), span)`
 * as their context: the host's handling and the decisions it causes join the plan's trace, across processes.
 */
export function fleetPlanSpan(o: FleetPlanSpanOptions, parent: Context = context.active()): Span {
  return tracer().startSpan(SPAN.fleetPlan, {
    attributes: {
      [ATTR.fleet.planId]: o.planId, [ATTR.fleet.gpusTotal]: o.gpusTotal, [ATTR.fleet.gpusInUse]: o.gpusInUse,
      [ATTR.fleet.gpusFreed]: o.gpusFreed, [ATTR.fleet.targets]: o.targets, [ATTR.fleet.actions]: o.actions,
      [ATTR.reason]: o.reason, ...(o.attributes ?? {}),
    },
  }, parent);
}
