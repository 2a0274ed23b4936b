/**
 * Where a workload may go in the fleet simulator: the first-fit indexes over the GPUs (firstfit.ts), the
 * keys they hold per GPU, the training floor's tables behind those keys, and powering on a GPU. Every
 * change to a GPU's state re-keys it in every index (touch).
 */
import { FirstFit } from './firstfit.ts';
import type { FleetState } from './fleet-state.ts';
import { DEMAND_GRID, RHO_GRID } from './settle.ts';

export class FitIndex {
  readonly st: FleetState;
  // First-fit indexes (firstfit.ts): the same choice as scanning the GPUs in slot order.
  //   infFit   - where an inference replica may go: free inference capacity (reference-GPU load) and memory
  //   jobFit   - where a training job may go: free training demand and memory
  //   emptyFit - switched-off GPUs (one-workload-per-GPU placement and the planner's fresh GPUs)
  //   room1/room08 - the planner's targets: GPUs with inference, free room under 100% / 80% of the packing line
  readonly infFit = new FirstFit();
  readonly jobFit = new FirstFit();
  readonly emptyFit = new FirstFit();
  readonly room1 = new FirstFit();
  readonly room08 = new FirstFit();
  private readonly okTotal = new Map<number, number>();
  private readonly okMean = new Map<number, number>();
  private readonly kv = new Float64Array(3);

  constructor(st: FleetState) { this.st = st; }

  /** Largest total training demand (grid) such that the law settles every smaller grid total at >= trainingMinSpeed. */
  okTotalDemand(type: number, meanLoad: number): number {
    const rq = Math.ceil(meanLoad / RHO_GRID - 1e-9);
    const key = type * 8192 + Math.min(rq, 8191);
    let v = this.okTotal.get(key);
    if (v === undefined) {
      v = 0;
      for (let k = 1; k * DEMAND_GRID <= 1 + 1e-9; k++) {
        if (this.st.settler.settle(type, meanLoad, k * DEMAND_GRID).trainingSpeed < this.st.place.trainingMinSpeed) break;
        v = k * DEMAND_GRID;
      }
      this.okTotal.set(key, v);
    }
    return v;
  }

  /**
   * Largest mean inference load (busy fraction on this GPU, load grid) at which the law still settles a
   * training demand at >= trainingMinSpeed (training speed falls as inference load rises: bisection).
   */
  okMeanLoad(type: number, demand: number): number {
    const dq = Math.max(1, Math.ceil(Math.min(1, demand) / DEMAND_GRID - 1e-9));
    const key = type * 64 + dq;
    let v = this.okMean.get(key);
    if (v === undefined) {
      const ok = (rq: number) => this.st.settler.settle(type, rq * RHO_GRID, dq * DEMAND_GRID).trainingSpeed >= this.st.place.trainingMinSpeed;
      if (!ok(0)) v = -1;
      else {
        let lo = 0, hi = 4095;
        if (ok(hi)) lo = hi;
        while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (ok(mid)) lo = mid; else hi = mid; }
        v = lo * RHO_GRID;
      }
      this.okMean.set(key, v);
    }
    return v;
  }

  /** Room left for more mean inference load (reference-GPU units) before the training on g drops below trainingMinSpeed. */
  trainingRoom(g: number): number {
    const st = this.st;
    return st.place.trainingMinSpeed > 0 && st.gTrain[g]! > 0
      ? (this.okMeanLoad(st.gType[g]!, st.gDemand[g]!) - st.gMeanLoad[g]!) * st.gSpeed[g]!
      : Infinity;
  }

  readonly infKey = (g: number, out: Float64Array): void => {
    const st = this.st, place = st.place;
    if (g >= st.opened) { out[0] = -Infinity; out[1] = -Infinity; return; }
    if (st.gInf[g] === 0 && st.gTrain[g] === 0) { out[0] = Infinity; out[1] = Infinity; return; }
    out[1] = st.gMem[g]! - st.gMemUsed[g]!;
    if (!place.shareInference || (!place.colocateTraining && st.gTrain[g]! > 0)) { out[0] = -Infinity; return; }
    out[2] = this.trainingRoom(g);
    if (place.packByPeak) out[0] = (st.capByType[st.gType[g]!]! - st.gPeak[g]!) * st.gSpeed[g]!;
    else if (place.inferenceUtil === 'mean') out[0] = (st.utilCap - st.gUtil[g]!) * st.gSpeed[g]!;
    else out[0] = (st.capByType[st.gType[g]!]! - st.gRho[g]!) * st.gSpeed[g]!;
  };

  readonly jobKey = (g: number, out: Float64Array): void => {
    const st = this.st, place = st.place;
    if (g >= st.opened) { out[0] = -Infinity; out[1] = -Infinity; return; }
    if (st.gInf[g] === 0 && st.gTrain[g] === 0) { out[0] = Infinity; out[1] = Infinity; return; }
    out[1] = st.gMem[g]! - st.gMemUsed[g]!;
    if (!place.colocateTraining) { out[0] = -Infinity; return; }
    let a = 1 - st.gDemand[g]!;
    if (place.inferenceUtil === 'mean') a = Math.min(a, st.utilCap - st.gUtil[g]!);
    if (place.trainingMinSpeed > 0 && st.gInf[g]! > 0) a = Math.min(a, this.okTotalDemand(st.gType[g]!, st.gMeanLoad[g]!) - st.gDemand[g]!);
    out[0] = a;
  };

  private roomKey(fill: number, g: number, out: Float64Array): void {
    const st = this.st;
    if (g >= st.opened || st.gInf[g] === 0) { out[0] = -Infinity; out[1] = -Infinity; return; }
    out[0] = (fill * st.capByType[st.gType[g]!]! - st.gPeak[g]!) * st.gSpeed[g]!;
    out[1] = st.gMem[g]! - st.gMemUsed[g]!;
    out[2] = this.trainingRoom(g);
  }
  readonly room1Key = (g: number, out: Float64Array): void => this.roomKey(1, g, out);
  readonly room08Key = (g: number, out: Float64Array): void => this.roomKey(0.8, g, out);

  /** Re-keys GPU g in every index after its state changed. */
  touch(g: number): void {
    const st = this.st, place = st.place, kv = this.kv;
    this.emptyFit.set(g, st.gInf[g] === 0 && st.gTrain[g] === 0 ? 1 : -Infinity, 0);
    if (place.shareInference) { kv[2] = Infinity; this.infKey(g, kv); this.infFit.set(g, kv[0]!, kv[1]!, kv[2]!); }
    if (place.colocateTraining) { this.jobKey(g, kv); this.jobFit.set(g, kv[0]!, kv[1]!); }
    if (place.rebalance) { this.room1Key(g, kv); this.room1.set(g, kv[0]!, kv[1]!, kv[2]!); this.room08Key(g, kv); this.room08.set(g, kv[0]!, kv[1]!, kv[2]!); }
  }

  /** Re-keys every GPU in the indexes that follow the load, after the step's loads were measured. */
  rekeyLoads(): void {
    const st = this.st, place = st.place;
    if (place.shareInference && (place.packByPeak || place.inferenceUtil === 'current')) this.infFit.rebuild(st.opened, this.infKey);
    if (place.rebalance) { this.room1.rebuild(st.opened, this.room1Key); this.room08.rebuild(st.opened, this.room08Key); }
  }

  /** Powers on the next switched-off slot in the run's slot order (past the inventory: its types again). */
  open(): number {
    const st = this.st;
    if (st.opened === st.cap) st.grow();
    const g = st.opened++;
    const t = st.slotType[g % st.nSlots]!;
    st.gType[g] = t; st.gSpeed[g] = st.speeds[t]!; st.gMem[g] = st.w.types[t]!.memoryGiB;
    this.touch(g);
    return g;
  }

  /** The first switched-off GPU in slot order, powered on. */
  firstEmpty(): number { const g = this.emptyFit.find(1, 0); return g >= 0 ? g : this.open(); }

  /**
   * gpucolo: a replica joins a GPU with training only if the law still settles the training there at
   * >= trainingMinSpeed at the GPU's mean load with the replica (the job rule, seen from the other side).
   */
  keepsTraining(mean: number, not: number): (k: number) => boolean {
    const st = this.st;
    return st.place.trainingMinSpeed > 0
      ? (k: number) => k !== not && (st.gTrain[k] === 0 || st.settler.settle(st.gType[k]!, st.gMeanLoad[k]! + mean / st.gSpeed[k]!, Math.min(1, st.gDemand[k]!)).trainingSpeed >= st.place.trainingMinSpeed)
      : (k: number) => k !== not;
  }
}
