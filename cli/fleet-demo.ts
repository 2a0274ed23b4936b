import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkloadsFile } from '../runners/host/index.ts';
import type { FleetPlanEvent, GpuStatusEvent } from '../schemas/index.ts';

/** The `fleet` part of `gpucolo demo --json`. */
export interface DemoFleetSummary {
  gpusTotal: number;
  /** GPUs with no inference and no training, sampled once a simulated second once every GPU has reported. */
  gpusFreedMin: number;
  gpusFreedMax: number;
  gpusFreedMean: number;
  /** Moves in the fleet's plans (each starts a workload on one GPU and drains or checkpoints it on another). */
  moves: number;
}

/** Calm request rate of the inference-only GPUs (batches/s): they are provisioned for peaks, idle at calm. */
export const LIGHT_RATE_RPS = 45;

/**
 * The demo's fleet, per host: GPU 0 is busy and co-located (ResNet-50 at 150 batches/s next to WRN-101
 * training, the single-GPU default); every other GPU serves a lighter ResNet-50 alone. Ids are
 * fleet-unique (host-prefixed) so a service or job can move to any GPU.
 */
export function demoWorkloadsFile(hostId: string, gpus: number): WorkloadsFile {
  return {
    profile: 'rtx3090-resnet50-wrn101',
    policy: 'gpucolo',
    gpus: Array.from({ length: gpus }, (_, i) => (i === 0
      ? { services: [{ id: `${hostId}-resnet50`, sloMs: 25, batch: 2, rateRps: 150 }], trainings: [{ id: `${hostId}-wrn101` }] }
      : { services: [{ id: `${hostId}-g${i}-resnet50`, sloMs: 25, batch: 2, rateRps: LIGHT_RATE_RPS }], trainings: [] })),
  };
}

let dir: string | undefined;
/** Writes the demo workloads of one host to a temporary file (removed when the process exits); returns its path. */
export function demoWorkloads(hostId: string, gpus: number): string {
  if (!dir) {
    const made = mkdtempSync(join(tmpdir(), 'gpucolo-demo-'));
    dir = made;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  const file = join(dir, `${hostId}.json`);
  writeFileSync(file, JSON.stringify(demoWorkloadsFile(hostId, gpus)));
  return file;
}

interface Counts { windows: number; met: number }

/**
 * What the demo summary needs from the event stream: freed-GPU samples, plan moves, and 1 s-window SLO
 * attainment per GPU across services that came and went. A service's counters restart when it starts on
 * a GPU again; the tally banks the earlier tenure's counts, so nothing a GPU served is forgotten.
 */
export class FleetTally {
  private readonly tenures = new Map<string, { banked: Counts; last: Counts }>();
  private readonly latest = new Map<string, GpuStatusEvent>();
  private readonly freed: number[] = [];
  /** Training iterations done on each GPU, per job: the last count seen there and what was added since. */
  private readonly trained = new Map<string, { last: number; done: number }>();
  private readonly jobsSeen = new Set<string>();
  moves = 0;

  onStatus(s: GpuStatusEvent): void {
    const gpu = `${s.host}/${s.gpu}`;
    this.latest.set(gpu, s);
    for (const svc of s.services) {
      const key = `${gpu}|${svc.serviceId}`;
      const t = this.tenures.get(key) ?? { banked: { windows: 0, met: 0 }, last: { windows: 0, met: 0 } };
      if (svc.sloWindows < t.last.windows) {
        t.banked = { windows: t.banked.windows + t.last.windows, met: t.banked.met + t.last.met };
      }
      t.last = { windows: svc.sloWindows, met: svc.sloWindowsMet };
      this.tenures.set(key, t);
    }
    for (const job of s.trainings) {
      const key = `${gpu}|${job.jobId}`;
      const t = this.trained.get(key);
      // A job first seen here counts from 0 if it is new to the run, else from where it arrived (a job the
      // fleet moved brings its checkpointed count along; those iterations were done elsewhere).
      if (!t) this.trained.set(key, { last: job.iterations, done: this.jobsSeen.has(job.jobId) ? 0 : job.iterations });
      else if (job.iterations >= t.last) { t.done += job.iterations - t.last; t.last = job.iterations; }
      else t.last = job.iterations; // restarted from an older checkpoint: count on from there
      this.jobsSeen.add(job.jobId);
    }
  }

  /** Training iterations done on a GPU during the run, every job that trained there. */
  iterations(gpu: string): number {
    let n = 0;
    for (const [key, t] of this.trained) if (key.startsWith(`${gpu}|`)) n += t.done;
    return n;
  }

  onPlan(p: FleetPlanEvent): void {
    this.moves += p.moves.length;
  }

  /** Counts the free GPUs now (once all `total` have reported). */
  sample(total: number): void {
    if (this.latest.size < total) return;
    let free = 0;
    for (const s of this.latest.values()) if (s.services.length === 0 && s.trainings.length === 0) free++;
    this.freed.push(free);
  }

  /**
   * A GPU's attainment: of all the 1 s service windows it served during the run (every service, every
   * tenure, pooled), the share whose p99 was within the SLO. A service that stayed the whole run on one
   * GPU counts exactly as before the fleet existed; one that moved counts on each GPU for the time it
   * spent there. 1 for a GPU that never served.
   */
  attainment(gpu: string): number {
    let windows = 0;
    let met = 0;
    for (const [key, t] of this.tenures) {
      if (!key.startsWith(`${gpu}|`)) continue;
      windows += t.banked.windows + t.last.windows;
      met += t.banked.met + t.last.met;
    }
    return windows > 0 ? met / windows : 1;
  }

  /** 1 s service windows a GPU served during the run (0: it never served). */
  servedWindows(gpu: string): number {
    let windows = 0;
    for (const [key, t] of this.tenures) if (key.startsWith(`${gpu}|`)) windows += t.banked.windows + t.last.windows;
    return windows;
  }

  summary(total: number): DemoFleetSummary {
    const n = this.freed.length;
    return {
      gpusTotal: total,
      gpusFreedMin: n ? Math.min(...this.freed) : 0,
      gpusFreedMax: n ? Math.max(...this.freed) : 0,
      gpusFreedMean: n ? Math.round((this.freed.reduce((a, b) => a + b, 0) / n) * 100) / 100 : 0,
      moves: this.moves,
    };
  }
}
