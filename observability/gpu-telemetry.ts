import { context, trace, type Context, type Link, type Span } from '@opentelemetry/api';
import type { GpuStatusEvent } from '../schemas/index.ts';
import { recordDecision, recordGpuStatus } from './metrics.ts';
import { decisionSpan, statusSpan, windowSpanContext, type DecisionInputs, type DecisionLike } from './spans.ts';

/** The latency fields of a window as the GPU actor receives it. */
export interface WindowView {
  sloMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  count: number;
  rateRps: number;
  seq: number;
  tMs: number;
}

/** Which training command carries each knob: a decision's actuation spans are its children. */
const ACTION_OF_KNOB: Record<string, string> = { pacing: 'set-pacing', mpsSharePct: 'set-mps-share', trainingRunning: 'set-running' };

const MAX_LINKS = { inner: 8, outer: 32 } as const;

/** One control step's spans: which context each actuation command runs under, and when they end. */
export interface TracedStep {
  /** The context of a knob's decision, or of the command that actuates it (else the step's first decision). */
  contextFor(knobOrAction: string): Context;
  end(): void;
}

/**
 * Per-GPU tracing and metrics glue for the host runner: remembers what telemetry arrived (for the
 * decision's inputs and links), makes one span per knob change, a status span per status period.
 */
export class GpuTelemetry {
  private readonly latest = new Map<string, WindowView>();
  private readonly pending = { inner: [] as Link[], outer: [] as Link[] };
  private readonly windowsSince = { inner: 0, outer: 0 };
  private itersPerSec = new Map<string, number>();

  constructor(readonly host: string, readonly gpu: string) {}

  /** Producer side: the context to publish a latency window with (a short span it links from). */
  windowContext(serviceId: string, subject: string, w: WindowView): Context {
    return windowSpanContext(this.host, this.gpu, serviceId, subject, w);
  }

  /** Consumer side: a latency window arrived with the trace context it carried. */
  onWindow(serviceId: string, w: WindowView, carried: Context): void {
    this.latest.set(serviceId, w);
    const sc = trace.getSpanContext(carried);
    for (const tier of ['inner', 'outer'] as const) {
      this.windowsSince[tier]++;
      if (!sc) continue;
      const links = this.pending[tier];
      links.push({ context: sc, attributes: { 'gpucolo.service': serviceId, 'gpucolo.window.seq': w.seq, 'gpucolo.window.p99_ms': w.p99Ms } });
      if (links.length > MAX_LINKS[tier]) links.shift();
    }
  }

  /** Training progress arrived. */
  onProgress(jobId: string, itersPerSec: number): void {
    this.itersPerSec.set(jobId, itersPerSec);
  }

  private inputs(decision: DecisionLike | undefined, tier: 'inner' | 'outer'): DecisionInputs | undefined {
    let id = decision?.drivingServiceId;
    if (!id || !this.latest.has(id)) {
      // The tightest service: highest p99 against its SLO.
      let worst = -Infinity;
      for (const [sid, w] of this.latest) if (w.p99Ms / w.sloMs > worst) { worst = w.p99Ms / w.sloMs; id = sid; }
    }
    const w = id ? this.latest.get(id) : undefined;
    if (!id || !w) return undefined;
    let its = 0;
    for (const v of this.itersPerSec.values()) its += v;
    return {
      serviceId: id, sloMs: w.sloMs, p50Ms: w.p50Ms, p95Ms: w.p95Ms, p99Ms: w.p99Ms, meanMs: w.meanMs, count: w.count,
      rateRps: w.rateRps, windows: this.windowsSince[tier], trainingItersPerSec: its,
    };
  }

  /** Opens one span per decision of a control step (none for a step without decisions). */
  step(tier: 'inner' | 'outer' | 'safety' | 'start', policy: string, decisions: readonly DecisionLike[], deviceMs: number): TracedStep {
    const base = context.active();
    if (!decisions.length || tier === 'start') return { contextFor: () => base, end: () => {} };
    const consumed = tier === 'outer' ? 'outer' : 'inner';
    const links = this.pending[consumed].splice(0);
    const spans: { knob: string; action: string; span: Span }[] = [];
    for (const d of decisions) {
      const inputs = this.inputs(d, consumed);
      spans.push({
        knob: d.knob,
        action: ACTION_OF_KNOB[d.knob] ?? d.knob,
        span: decisionSpan({ host: this.host, gpu: this.gpu, policy, tier, decision: d, deviceMs, links, parent: base, ...(inputs ? { inputs } : {}) }),
      });
      recordDecision(this.host, this.gpu, tier, d.knob);
    }
    this.windowsSince[consumed] = 0;
    return {
      contextFor: (k) => trace.setSpan(base, (spans.find((s) => s.action === k || s.knob === k) ?? spans[0]!).span),
      end: () => { for (const s of spans) s.span.end(); },
    };
  }

  /** A status period: metrics and the status span. */
  status(s: GpuStatusEvent): void {
    recordGpuStatus(s);
    statusSpan(s);
  }
}
