/**
 * gpucolo's fleet planner in the simulator (Placement.rebalance): after each step, on the load just
 * measured, relief of every GPU whose recent peak passed its relief line and, every hour, consolidation of
 * lightly loaded inference-only GPUs into the others' room. Inference replicas move (start there, drain
 * here), priced by a start-up on both GPUs (fleet-tally.ts); training never moves.
 */
import type { FitIndex } from './fleet-index.ts';
import type { Placer } from './fleet-place.ts';
import type { FleetState } from './fleet-state.ts';

/** Consolidation runs every this many steps (1 h) and empties at most this fraction of the GPUs in use. */
const CONSOLIDATE_EVERY = 6;
const CONSOLIDATE_MAX_FRACTION = 0.05;

export class Planner {
  readonly st: FleetState;
  readonly ix: FitIndex;
  readonly pl: Placer;
  // A move is decided at the end of step t on the load just measured and starts with step t + 1: for the
  // start-up time the replica is held on both GPUs (its old GPU keeps serving it; the new one holds its
  // memory and is powered), so the old GPU carries it for startupF of step t + 1 (its load, its violations,
  // training beside it, and the GPU counted if the move emptied it).
  /** The GPU a replica moved from at the end of the last step (-1: none), and the step it last moved. */
  readonly uFrom: Int32Array;
  readonly uMovedAt: Int32Array;
  /** Replicas moved at the end of the last step. */
  movedNow: number[] = [];
  readonly sMoves = new Map<number, number>(); // service * 65536 + day -> moves (for the per-day maximum)
  private wanted = new Uint8Array(0);

  constructor(st: FleetState, ix: FitIndex, pl: Placer) {
    this.st = st; this.ix = ix; this.pl = pl;
    const nU = st.uSvc.length;
    this.uFrom = new Int32Array(nU).fill(-1); this.uMovedAt = new Int32Array(nU).fill(-1e9);
  }

  /** Moves unit u from its GPU to g. */
  move(u: number, g: number, t: number): void {
    const st = this.st;
    if (this.uFrom[u]! < 0) this.movedNow.push(u);
    if (this.uFrom[u]! < 0) this.uFrom[u] = st.uGpu[u]!;
    this.uMovedAt[u] = t;
    const key = st.uSvc[u]! * 65536 + Math.floor((t * st.w.stepS) / 86400);
    this.sMoves.set(key, (this.sMoves.get(key) ?? 0) + 1);
    this.pl.detach(u, t); this.pl.attach(u, g, t);
  }

  /** The start-ups of the last step's moves are over. */
  startupsDone(): void {
    for (const u of this.movedNow) this.uFrom[u] = -1;
    this.movedNow = [];
  }

  /** Largest number of moves of one service in one day. */
  maxPerServiceDay(): number { return [...this.sMoves.values()].reduce((a, b) => Math.max(a, b), 0); }

  private dwelling(u: number, t: number): boolean { return t - this.uMovedAt[u]! < this.st.dwellSteps; }

  /** A GPU (other than `not`) with inference on it that takes a replica of this recent peak under fill x the packing line; -1 when none. */
  private roomFor(u: number, peak: number, not: number, fill: 1 | 0.8): number {
    const st = this.st, ix = this.ix;
    return (fill === 1 ? ix.room1 : ix.room08).find(peak, st.w.serviceMemGiB, ix.keepsTraining(st.meanOf(u), not), st.meanOf(u));
  }

  /** The planner's moves at the end of step t; returns how many. */
  rebalance(t: number): number {
    const st = this.st;
    if (this.wanted.length < st.opened) this.wanted = new Uint8Array(st.cap);
    const consolidate = t % CONSOLIDATE_EVERY === 0;
    // The replicas of each GPU the planner looks at: those past the relief line (and, on consolidation
    // steps, all of them), gathered in one pass over the running replicas.
    const over: number[] = [];
    for (let g = 0; g < st.opened; g++) if (st.gInf[g]! > 0 && st.gPeak[g]! > st.reliefByType[st.gType[g]!]!) over.push(g);
    if (over.length === 0 && !consolidate) return 0;
    const byGpu = this.gather(over, consolidate);
    const n = this.relieve(over, byGpu, t);
    // Consolidation: empty the least loaded inference-only GPUs whose replicas all fit elsewhere.
    if (!consolidate) return n;
    return n + this.consolidate(byGpu, t);
  }

  /** The running replicas of each GPU in `over` (of every GPU on a consolidation step). */
  private gather(over: number[], consolidate: boolean): Map<number, number[]> {
    const st = this.st, wanted = this.wanted;
    if (!consolidate) for (const g of over) wanted[g] = 1;
    const byGpu = new Map<number, number[]>();
    for (const u of st.activeU) {
      const g = st.uGpu[u]!;
      if (!consolidate && wanted[g] !== 1) continue;
      let a = byGpu.get(g); if (!a) byGpu.set(g, (a = [])); a.push(u);
    }
    if (!consolidate) for (const g of over) wanted[g] = 0;
    return byGpu;
  }

  /**
   * Relief: a GPU whose recent peak passed its relief line sheds its largest replicas until it is back
   * under the packing line. Sorts the lists of byGpu it relieves in place (consolidation reads them after).
   */
  private relieve(over: number[], byGpu: Map<number, number[]>, t: number): number {
    const st = this.st;
    const pk = (u: number) => st.peakOf(u, t);
    let n = 0;
    for (const g of over) {
      const list = byGpu.get(g) ?? [];
      // Largest first, replicas that moved within the dwell last (latency first: they may still move).
      list.sort((a, b) => Number(this.dwelling(a, t)) - Number(this.dwelling(b, t)) || pk(b) - pk(a));
      for (const u of list) {
        if (st.gPeak[g]! <= st.capByType[st.gType[g]!]! || st.gInf[g]! <= 1) break;
        // A target below 80% of its packing line first (one that takes it with room to spare does not pass
        // its own relief line at the next rise), then any under the line, then a switched-off GPU.
        let to = this.roomFor(u, pk(u), g, 0.8);
        if (to < 0) to = this.roomFor(u, pk(u), g, 1);
        if (to < 0) to = this.ix.firstEmpty();
        if (to === g) continue;
        this.move(u, to, t);
        n++;
      }
    }
    return n;
  }

  /** Consolidation: empties at most CONSOLIDATE_MAX_FRACTION of the inference-only GPUs, least loaded first. */
  private consolidate(byGpu: Map<number, number[]>, t: number): number {
    const st = this.st;
    const sources = [...byGpu.keys()].filter((g) => st.gTrain[g] === 0 && st.gInf[g]! > 0).sort((a, b) => st.gPeak[a]! - st.gPeak[b]!);
    const budget = Math.ceil(CONSOLIDATE_MAX_FRACTION * sources.length);
    let n = 0, emptied = 0;
    for (const g of sources) {
      if (emptied >= budget) break;
      const list = (byGpu.get(g) ?? []).filter((u) => st.uGpu[u] === g);
      if (list.length === 0 || st.gInf[g] !== list.length || list.some((u) => this.dwelling(u, t))) continue;
      const plan = this.emptying(g, list, t);
      if (plan === undefined) continue;
      for (const [u, k] of plan) { this.move(u, k, t); n++; }
      emptied++;
    }
    return n;
  }

  /**
   * A target for every replica of GPU g (list), each counted on its target before the next is placed;
   * undefined when one has none. The targets' state is put back before it returns.
   */
  private emptying(g: number, list: number[], t: number): [number, number][] | undefined {
    const st = this.st;
    // Targets only below 80% of the packing line: a GPU just filled is not a source of the next relief.
    const plan: [number, number][] = [];
    const saved: [number, number, number][] = [];
    let ok = true;
    for (const u of list) {
      const peak = st.peakOf(u, t);
      const k = this.roomFor(u, peak, g, 0.8);
      if (k < 0) { ok = false; break; }
      plan.push([u, k]);
      saved.push([k, st.gPeak[k]!, st.gMemUsed[k]!]);
      st.gPeak[k]! += peak / st.gSpeed[k]!; st.gMemUsed[k]! += st.w.serviceMemGiB;
      this.ix.touch(k);
    }
    for (let i = saved.length - 1; i >= 0; i--) { const [k, r, m] = saved[i]!; st.gPeak[k] = r; st.gMemUsed[k] = m; this.ix.touch(k); }
    return ok ? plan : undefined;
  }
}
