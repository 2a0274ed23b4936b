import { ATTR, SPAN } from './spans.ts';
import type { AttrValue, SpanRecord } from './trace-file.ts';

/** One knob change and why, read back from its decision span. */
export interface KnobChange {
  gpu: string;
  unixMs: number;
  /** Device (simulated) ms since the GPU started. */
  deviceMs?: number;
  tier: string;
  policy?: string;
  knob: string;
  oldValue: number;
  newValue: number;
  /** The rule that moved the knob. */
  reason: string;
  drivingServiceId?: string;
  terms: Record<string, number>;
  /** What the decision consumed: the driving service's latest window, training progress. */
  inputs: Record<string, number | string>;
  traceId: string;
  spanId: string;
  /** Fleet plans in the same trace (the plan that caused this change). */
  fleetPlanIds: string[];
}

/** A fleet plan span. */
export interface FleetPlanView {
  planId: string;
  unixMs: number;
  /** On a GPU's timeline: the plan's time in that GPU's device clock, when it can be placed. */
  deviceMs?: number;
  traceId: string;
  gpusTotal?: number;
  gpusInUse?: number;
  gpusFreed?: number;
  targets: string[];
  actions?: number;
  reason: string;
}

export interface GpuTimeline {
  gpu: string;
  policy?: string;
  changes: KnobChange[];
  fleetPlans: FleetPlanView[];
}

export interface Explanation {
  gpus: GpuTimeline[];
  /** Spans read from the file. */
  spans: number;
}

/** A time bound: wall clock (Unix ms) or device time since the GPU started (ms). */
export type TimeBound = { kind: 'wall'; unixMs: number } | { kind: 'device'; ms: number };

export interface ExplainFilter {
  gpu?: string;
  since?: TimeBound;
  until?: TimeBound;
}

/** Parses `--since`/`--until`: an ISO date-time, or a device time like `40s`, `2m`, `1500ms`, `1h`. Undefined when neither. */
export function parseTimeBound(raw: string): TimeBound | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(raw);
  if (m) return { kind: 'device', ms: Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'] };
  if (/^\d{4}-\d{2}-\d{2}/.test(raw.trim())) {
    const t = Date.parse(raw);
    if (Number.isFinite(t)) return { kind: 'wall', unixMs: t };
  }
  return undefined;
}

const num = (v: AttrValue | undefined): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: AttrValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** The GPU (`host/gpu`) a span is about: its attributes, else a GPU-scoped NATS subject it carried. */
function gpuOf(s: SpanRecord): string | undefined {
  const host = str(s.attributes[ATTR.host]);
  const gpu = str(s.attributes[ATTR.gpu]);
  if (host && gpu) return `${host}/${gpu}`;
  const subject = str(s.attributes['messaging.destination.name']);
  const m = subject ? /^colo\.v1\.([^.]+)\.([^.]+)\./.exec(subject) : null;
  return m && m[1] !== 'evt' ? `${m[1]}/${m[2]}` : undefined;
}

function planView(s: SpanRecord): FleetPlanView {
  const a = s.attributes;
  const targets = a[ATTR.fleet.targets];
  const v: FleetPlanView = {
    planId: str(a[ATTR.fleet.planId]) ?? s.spanId, unixMs: s.startUnixMs, traceId: s.traceId,
    targets: Array.isArray(targets) ? targets.map(String) : typeof targets === 'string' ? [targets] : [],
    reason: str(a[ATTR.reason]) ?? '',
  };
  const opt = { gpusTotal: ATTR.fleet.gpusTotal, gpusInUse: ATTR.fleet.gpusInUse, gpusFreed: ATTR.fleet.gpusFreed, actions: ATTR.fleet.actions } as const;
  for (const [k, key] of Object.entries(opt)) {
    const n = num(a[key]);
    if (n !== undefined) (v as unknown as Record<string, number>)[k] = n;
  }
  return v;
}

function change(s: SpanRecord, gpu: string, plansByTrace: Map<string, FleetPlanView[]>): KnobChange {
  const a = s.attributes;
  const terms: Record<string, number> = {};
  const inputs: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(a)) {
    if (k.startsWith(ATTR.termPrefix) && typeof v === 'number') terms[k.slice(ATTR.termPrefix.length)] = v;
    else if (k.startsWith('gpucolo.input.') && (typeof v === 'number' || typeof v === 'string')) inputs[k.slice('gpucolo.input.'.length)] = v;
  }
  const c: KnobChange = {
    gpu, unixMs: s.startUnixMs, tier: s.name.slice(SPAN.decisionPrefix.length), knob: str(a[ATTR.knob]) ?? '?',
    oldValue: num(a[ATTR.oldValue]) ?? NaN, newValue: num(a[ATTR.newValue]) ?? NaN, reason: str(a[ATTR.reason]) ?? '',
    terms, inputs, traceId: s.traceId, spanId: s.spanId,
    fleetPlanIds: (plansByTrace.get(s.traceId) ?? []).map((p) => p.planId),
  };
  const deviceMs = num(a[ATTR.deviceMs]);
  if (deviceMs !== undefined) c.deviceMs = deviceMs;
  const policy = str(a[ATTR.policy]);
  if (policy) c.policy = policy;
  const driver = str(a[ATTR.drivingService]);
  if (driver) c.drivingServiceId = driver;
  return c;
}

function within(unixMs: number, deviceMs: number | undefined, f: ExplainFilter): boolean {
  const ok = (b: TimeBound | undefined, dir: 1 | -1) => {
    if (!b) return true;
    if (b.kind === 'wall') return dir * (unixMs - b.unixMs) >= 0;
    return deviceMs !== undefined && dir * (deviceMs - b.ms) >= 0;
  };
  return ok(f.since, 1) && ok(f.until, -1);
}

/**
 * Per GPU, every knob change (decision span) with its inputs, terms and rule, and the fleet plans that
 * touched the GPU (naming it as a target, or sharing a trace with a span on it).
 */
export function explain(spans: readonly SpanRecord[], filter: ExplainFilter = {}): Explanation {
  const plans = spans.filter((s) => s.name === SPAN.fleetPlan).map(planView);
  const plansByTrace = new Map<string, FleetPlanView[]>();
  for (const p of plans) plansByTrace.set(p.traceId, [...(plansByTrace.get(p.traceId) ?? []), p]);
  const timelines = new Map<string, GpuTimeline>();
  const tl = (gpu: string) => {
    let t = timelines.get(gpu);
    if (!t) timelines.set(gpu, (t = { gpu, changes: [], fleetPlans: [] }));
    return t;
  };
  // (wall, device) readings per GPU: a fleet plan has only a wall time, and a simulated GPU's clock runs
  // --speed times faster than the wall, so a plan is placed between the readings around it.
  const readings = new Map<string, Array<[number, number]>>();
  const plansOn = new Map<string, Set<FleetPlanView>>();
  for (const s of spans) {
    const gpu = gpuOf(s);
    if (!gpu || s.name === SPAN.fleetPlan) continue;
    const d = num(s.attributes[ATTR.deviceMs]);
    if (d !== undefined) {
      if (!readings.has(gpu)) readings.set(gpu, []);
      readings.get(gpu)!.push([s.startUnixMs, d]);
    }
    for (const p of plansByTrace.get(s.traceId) ?? []) {
      if (!plansOn.has(gpu)) plansOn.set(gpu, new Set());
      plansOn.get(gpu)!.add(p);
    }
    if (s.name.startsWith(SPAN.decisionPrefix)) {
      const t = tl(gpu);
      t.changes.push(change(s, gpu, plansByTrace));
      t.policy ??= str(s.attributes[ATTR.policy]);
    } else if (s.name === SPAN.status) {
      tl(gpu).policy ??= str(s.attributes[ATTR.policy]);
    }
  }
  for (const p of plans) {
    for (const target of p.targets) {
      if (!plansOn.has(target)) plansOn.set(target, new Set());
      plansOn.get(target)!.add(p);
    }
  }
  for (const [gpu, set] of plansOn) {
    const rs = (readings.get(gpu) ?? []).sort((a, b) => a[0] - b[0]);
    tl(gpu).fleetPlans = [...set].map((p) => {
      const deviceMs = deviceTimeAt(rs, p.unixMs);
      return deviceMs !== undefined ? { ...p, deviceMs } : { ...p };
    });
  }
  const gpus = [...timelines.values()]
    .filter((t) => !filter.gpu || t.gpu === filter.gpu)
    .map((t) => ({
      ...t,
      changes: t.changes.filter((c) => within(c.unixMs, c.deviceMs, filter)).sort((a, b) => a.unixMs - b.unixMs),
      fleetPlans: t.fleetPlans.filter((p) => within(p.unixMs, p.deviceMs, filter)).sort((a, b) => a.unixMs - b.unixMs),
    }))
    .sort((a, b) => a.gpu.localeCompare(b.gpu));
  return { gpus, spans: spans.length };
}

/**
 * A GPU's device time at a wall time, from its (wall, device) readings sorted by wall time: linear between
 * the two readings around it, and at the run's mean device speed before the first or after the last.
 */
export function deviceTimeAt(readings: ReadonlyArray<readonly [number, number]>, unixMs: number): number | undefined {
  if (readings.length === 0) return undefined;
  const first = readings[0]!;
  const last = readings.at(-1)!;
  const speed = last[0] > first[0] ? Math.max(0, (last[1] - first[1]) / (last[0] - first[0])) : 1;
  if (unixMs <= first[0]) return Math.max(0, first[1] - (first[0] - unixMs) * speed);
  if (unixMs >= last[0]) return last[1] + (unixMs - last[0]) * speed;
  let lo = 0;
  let hi = readings.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (readings[mid]![0] <= unixMs) lo = mid;
    else hi = mid;
  }
  const [w0, d0] = readings[lo]!;
  const [w1, d1] = readings[hi]!;
  return w1 > w0 ? d0 + ((unixMs - w0) / (w1 - w0)) * (d1 - d0) : d0;
}

const fixed = (n: number, d: number) => (Number.isInteger(n) ? String(n) : n.toFixed(d));

function knobValue(knob: string, v: number): string {
  if (!Number.isFinite(v)) return '?';
  if (knob === 'mpsSharePct') return `${fixed(v, 1)}%`;
  if (knob === 'trainingRunning') return v ? 'on' : 'off';
  return v.toFixed(3);
}

function clock(unixMs: number): string {
  return new Date(unixMs).toISOString().slice(11, 23);
}

function deviceTime(ms: number | undefined): string {
  return ms === undefined ? '' : `t=${(ms / 1000).toFixed(1)}s`;
}

/** The measurement behind a change, in words: "p99 27.1 ms > target 22.5 ms (SLO 25 ms, resnet50, 225 rps)". */
export function measurementText(c: KnobChange): string {
  const t = c.terms;
  const i = c.inputs;
  const parts: string[] = [];
  const measured = t.measuredMs ?? (typeof i.p99_ms === 'number' ? i.p99_ms : undefined);
  const target = t.targetMs ?? t.lrefMs;
  const slo = t.sloMs ?? (typeof i.slo_ms === 'number' ? i.slo_ms : undefined);
  if (measured !== undefined) {
    const cmp = target === undefined ? '' : measured > target ? ` > target ${fixed(target, 1)} ms` : ` <= target ${fixed(target, 1)} ms`;
    parts.push(`${c.policy === 'gpucolo-paper' ? 'mean' : 'p99'} ${measured.toFixed(1)} ms${cmp}`);
  }
  const ctx: string[] = [];
  if (slo !== undefined) ctx.push(`SLO ${fixed(slo, 1)} ms`);
  const svc = c.drivingServiceId ?? (typeof i.service === 'string' ? i.service : undefined);
  if (svc) ctx.push(svc);
  if (typeof i.rate_rps === 'number') ctx.push(`${i.rate_rps.toFixed(0)} rps`);
  if (ctx.length) parts.push(`(${ctx.join(', ')})`);
  if (t.dwellMs !== undefined) parts.push(`dwell ${(t.dwellMs / 1000).toFixed(1)} s`);
  return parts.join(' ');
}

/** One readable line per knob change. */
export function formatChange(c: KnobChange): string {
  const knob = `${c.knob} ${knobValue(c.knob, c.oldValue)} -> ${knobValue(c.knob, c.newValue)}`;
  const m = measurementText(c);
  const plan = c.fleetPlanIds.length ? ` [fleet plan ${c.fleetPlanIds.join(', ')}]` : '';
  return `  ${clock(c.unixMs)}  ${deviceTime(c.deviceMs).padEnd(8)}  ${c.tier.padEnd(6)}  ${knob.padEnd(30)}  ${m ? `${m}: ` : ''}${c.reason}${plan}`;
}

/** One readable line per fleet plan that touched the GPU. */
export function formatPlan(p: FleetPlanView): string {
  const use = p.gpusInUse !== undefined ? `${p.gpusInUse}${p.gpusTotal !== undefined ? ` of ${p.gpusTotal}` : ''} GPUs in use` : '';
  const freed = p.gpusFreed !== undefined ? `, ${p.gpusFreed} freed` : '';
  return `  ${clock(p.unixMs)}  ${deviceTime(p.deviceMs).padEnd(8)}  fleet   plan ${p.planId}: ${use}${freed}${p.reason ? `: ${p.reason}` : ''} (trace ${p.traceId.slice(0, 8)})`;
}

/** The whole explanation as text: per GPU a header and its timeline (knob changes and fleet plans by time). */
export function formatExplanation(e: Explanation): string {
  const out: string[] = [];
  for (const g of e.gpus) {
    const tiers = new Map<string, number>();
    for (const c of g.changes) tiers.set(c.tier, (tiers.get(c.tier) ?? 0) + 1);
    const byTier = [...tiers].map(([t, n]) => `${n} ${t}`).join(', ');
    out.push(`${g.gpu}  policy ${g.policy ?? '?'}: ${g.changes.length} knob change(s)${byTier ? ` (${byTier})` : ''}, ${g.fleetPlans.length} fleet plan(s)`);
    const rows: { unixMs: number; line: string }[] = [
      ...g.changes.map((c) => ({ unixMs: c.unixMs, line: formatChange(c) })),
      ...g.fleetPlans.map((p) => ({ unixMs: p.unixMs, line: formatPlan(p) })),
    ].sort((a, b) => a.unixMs - b.unixMs);
    for (const r of rows) out.push(r.line);
  }
  return out.join('\n');
}
