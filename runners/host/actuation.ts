// The host's outgoing commands and events: training commands for a GPU's knobs, the gpu.status event.
import { trace, type Context } from '@opentelemetry/api';
import type { GpuContext, TrainingCommandEvent } from '../../actors/index.ts';
import type { Bus, CommandBody } from '../../bus/index.ts';
import { samePacing, type Knobs } from '../../control/index.ts';
import type { GpuDevice } from '../../gpu/index.ts';
import { commandSpan, failSpan, SPAN, type TracedStep } from '../../observability/index.ts';
import { SCHEMA_VERSION, subjects, type GpuStatusEvent } from '../../schemas/index.ts';

export function finiteTerms(terms: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(terms)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return out;
}

export function statusEvent(c: GpuContext, state: string, tMs: number, unixMs: number): GpuStatusEvent {
  return {
    v: SCHEMA_VERSION, type: 'gpu.status', host: c.host, gpu: c.gpu, tMs, unixMs, policy: c.policyName, state,
    services: Object.entries(c.services).map(([serviceId, s]) => ({
      serviceId, sloMs: s.sloMs, p99Ms: s.last?.p99Ms ?? 0, meanMs: s.last?.meanMs ?? 0, rateRps: s.last?.rateRps ?? 0,
      runP99Ms: s.last?.runP99Ms ?? 0, sloWindows: s.last?.sloWindows ?? 0, sloWindowsMet: s.last?.sloWindowsMet ?? 0,
    })),
    trainings: Object.entries(c.trainings).map(([jobId, t]) => ({ jobId, itersPerSec: t.itersPerSec, iterations: t.iterations, state: t.state })),
    mpsSharePct: c.knobs.mpsSharePct, pacing: c.knobs.pacing, trainingRunning: c.knobs.trainingRunning,
    mpsChanges: c.mpsChanges, sleepChanges: c.sleepChanges,
  };
}

export function applyTraining(device: GpuDevice, jobId: string, c: TrainingCommandEvent): void {
  if (c.type === 'SET_PACING') device.setPacing(jobId, c.pacing);
  // A share already in force needs no restart (commands are idempotent).
  else if (c.type === 'SET_MPS_SHARE') { if (device.trainingStatus(jobId).mpsSharePct !== c.mpsSharePct) device.setMpsShare(jobId, c.mpsSharePct); }
  else device.setTrainingRunning(jobId, c.running);
}

/** Sends one training job the knobs that changed (all of them when `old` is undefined), as commands over the bus. */
export async function actuateJob(
  bus: Bus, host: string, gpu: string, jobId: string, old: Knobs | undefined, knobs: Knobs, parent: Context | TracedStep, log: (l: string) => void,
): Promise<void> {
  const subject = subjects.trainingCommand(host, gpu, jobId);
  const cmds: CommandBody<'training.command'>[] = [];
  const base = { type: 'training.command' as const };
  const running: CommandBody<'training.command'>[] = !old || old.trainingRunning !== knobs.trainingRunning ? [{ ...base, action: 'set-running', running: knobs.trainingRunning }] : [];
  const share: CommandBody<'training.command'>[] = !old || old.mpsSharePct !== knobs.mpsSharePct ? [{ ...base, action: 'set-mps-share', mpsSharePct: knobs.mpsSharePct }] : [];
  // A job to run gets its share first: a stopped job only records it, so it starts once, at that share (running
  // first would start it at the old share and restart it for the new one). A job to stop stops first.
  cmds.push(...(knobs.trainingRunning ? [...share, ...running] : [...running, ...share]));
  if (!old || !samePacing(old.pacing, knobs.pacing)) {
    cmds.push({ ...base, action: 'set-pacing', pacing: knobs.pacing });
  }
  for (const body of cmds) {
    const ctx = 'contextFor' in parent ? parent.contextFor(body.action) : parent;
    const span = commandSpan(SPAN.actuatePrefix, subject, body.action, { 'gpucolo.host': host, 'gpucolo.gpu': gpu, 'gpucolo.job': jobId }, ctx);
    try {
      const reply = await bus.request<'training.command'>(subject, body, { timeoutMs: 2000, ctx: trace.setSpan(ctx, span) });
      if (!reply.ok) throw new Error(reply.error ?? 'refused');
    } catch (err) {
      failSpan(span, err);
      log(`actuation ${subject} ${body.action} failed: ${(err as Error).message}`);
    } finally {
      span.end();
    }
  }
}
