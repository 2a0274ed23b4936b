/**
 * Placement in the fleet simulator: replicas and training jobs onto GPUs by the policy's rule (first fit
 * on utilisation and memory through fleet-index.ts; a new GPU, the next switched-off slot, when nothing
 * fits), replicas on and off their GPUs, and the steps' placement phases: departures, replica counts
 * following the load, the measured load per GPU, arrivals.
 */
import type { FitIndex } from './fleet-index.ts';
import type { FleetState } from './fleet-state.ts';

export class Placer {
  readonly st: FleetState;
  readonly ix: FitIndex;

  constructor(st: FleetState, ix: FitIndex) { this.st = st; this.ix = ix; }

  /** Adds unit u to GPU g (its current load to gRho, its recent peak to gPeak). */
  attach(u: number, g: number, t: number): void {
    const st = this.st;
    st.uGpu[u] = g;
    st.uUtil[u] = st.utilOf(u, t) / st.gSpeed[g]!;
    st.uMean[u] = st.meanOf(u) / st.gSpeed[g]!;
    st.gUtil[g]! += st.uUtil[u]!; st.gMeanLoad[g]! += st.uMean[u]!;
    st.gMemUsed[g]! += st.w.serviceMemGiB; st.gInf[g]!++;
    st.gRho[g]! += st.loadOf(u, t) / st.gSpeed[g]!;
    if (st.place.packByPeak) st.gPeak[g]! += st.peakOf(u, t) / st.gSpeed[g]!;
    this.ix.touch(g);
  }

  /** Takes unit u off its GPU. */
  detach(u: number, t: number): void {
    const st = this.st;
    const g = st.uGpu[u]!;
    st.gUtil[g]! -= st.uUtil[u]!; st.gMeanLoad[g]! -= st.uMean[u]!;
    st.gMemUsed[g]! -= st.w.serviceMemGiB; st.gInf[g]!--;
    st.gRho[g]! -= st.loadOf(u, t) / st.gSpeed[g]!;
    if (st.place.packByPeak) st.gPeak[g]! -= st.peakOf(u, t) / st.gSpeed[g]!;
    if (st.gInf[g] === 0) { st.gUtil[g] = st.place.inferenceUtil === 'mean' ? st.gDemand[g]! : 0; st.gMeanLoad[g] = 0; st.gRho[g] = 0; st.gPeak[g] = 0; }
    st.uGpu[u] = -1;
    this.ix.touch(g);
  }

  /** Starts unit u: on a GPU of its own, or the first with room for it (a new one when none has). */
  placeUnit(u: number, t: number): void {
    const st = this.st, ix = this.ix;
    let g: number;
    if (!st.place.shareInference) g = ix.firstEmpty();
    else {
      const need = st.place.packByPeak ? st.peakOf(u, t) : st.utilOf(u, t);
      // gpucolo: a replica joins a GPU with training only if the law still settles the training there at
      // >= trainingMinSpeed at the GPU's mean load with the replica (the job rule, seen from the other side).
      g = ix.infFit.find(need, st.w.serviceMemGiB, ix.keepsTraining(st.meanOf(u), -1), st.meanOf(u));
      if (g < 0) g = ix.open();
    }
    this.attach(u, g, t);
    st.uSlot[u] = st.activeU.length;
    st.activeU.push(u);
  }

  /** Stops unit u. */
  removeUnit(u: number, t: number): void {
    const st = this.st, activeU = st.activeU;
    this.detach(u, t);
    const i = st.uSlot[u]!, last = activeU[activeU.length - 1]!;
    activeU[i] = last; st.uSlot[last] = i; activeU.pop();
  }

  /** Service s now runs r replicas: the surplus ones stop, the others take their new share (missing ones are placed later). */
  setReplicas(s: number, r: number, t: number): void {
    const st = this.st;
    if (r === st.sRep[s]) return;
    while (st.sUnits[s]! > r) this.removeUnit(st.unitBase[s]! + --st.sUnits[s]!, t);
    // Re-share: take the running replicas out at the old share and put them back at the new one.
    const base = st.unitBase[s]!, n = st.sUnits[s]!;
    const at: number[] = [];
    for (let k = 0; k < n; k++) { at.push(st.uGpu[base + k]!); this.detach(base + k, t); }
    st.sRep[s] = r;
    for (let k = 0; k < n; k++) this.attach(base + k, at[k]!, t);
  }

  /** Places the replicas service s is missing. */
  fillReplicas(s: number, t: number): void {
    const st = this.st;
    while (st.sUnits[s]! < st.sRep[s]!) this.placeUnit(st.unitBase[s]! + st.sUnits[s]!++, t);
  }

  /** Starts training job j: on a GPU of its own, or the first with room for it (a new one when none has). */
  placeTraining(j: number): void {
    const st = this.st, ix = this.ix, T = st.T;
    const demand = T.demand[j]!, mem = T.memoryGiB[j]!;
    let g: number;
    if (!st.place.colocateTraining) g = ix.firstEmpty();
    else {
      const check = st.place.trainingMinSpeed > 0
        ? (k: number) => st.gInf[k] === 0 || st.settler.settle(st.gType[k]!, st.gMeanLoad[k]!, Math.min(1, st.gDemand[k]! + demand)).trainingSpeed >= st.place.trainingMinSpeed
        : undefined;
      g = ix.jobFit.find(demand, mem, check);
      if (g < 0) g = ix.open();
    }
    st.tGpu[j] = g;
    st.gDemand[g]! += demand;
    st.gMemUsed[g]! += mem;
    if (st.place.inferenceUtil === 'mean') st.gUtil[g]! += demand;
    st.gTrain[g]!++;
    st.activeT.push(j);
    ix.touch(g);
  }

  /** Departures at step t: services (all their replicas) and finished training jobs. */
  departures(t: number): void {
    const st = this.st, { S, T, activeS, activeT } = st;
    for (let i = activeS.length - 1; i >= 0; i--) {
      const s = activeS[i]!;
      if (S.end[s]! > t) continue;
      while (st.sUnits[s]! > 0) this.removeUnit(st.unitBase[s]! + --st.sUnits[s]!, t > 0 ? t - 1 : t);
      activeS[i] = activeS[activeS.length - 1]!; activeS.pop();
    }
    for (let i = activeT.length - 1; i >= 0; i--) {
      const j = activeT[i]!;
      if (st.tDone[j]! < 0) continue;
      const g = st.tGpu[j]!;
      st.gDemand[g]! -= T.demand[j]!; st.gMemUsed[g]! -= T.memoryGiB[j]!; st.gTrain[g]!--;
      if (st.place.inferenceUtil === 'mean') st.gUtil[g]! -= T.demand[j]!;
      if (st.gTrain[g] === 0) st.gDemand[g] = 0;
      activeT[i] = activeT[activeT.length - 1]!; activeT.pop();
      this.ix.touch(g);
    }
  }

  /** Replica counts follow the load (surplus replicas stop now, missing ones are placed with the arrivals). */
  resizeReplicas(t: number): void {
    const st = this.st, multi = st.multi;
    for (let i = multi.length - 1; i >= 0; i--) {
      const s = multi[i]!;
      if (st.S.end[s]! <= t) { multi[i] = multi[multi.length - 1]!; multi.pop(); continue; }
      this.setReplicas(s, st.replicasFor(st.w.appLoad[st.S.app[s]!]![t]!), t > 0 ? t - 1 : t);
    }
  }

  /** Current inference load (and recent peak) per GPU at step t, and the indexes that follow them re-keyed. */
  measureLoads(t: number): void {
    const st = this.st, { gRho, gPeak, gSpeed, uGpu, activeU } = st; // nothing here powers a GPU on: the arrays stay
    gRho.fill(0, 0, st.opened);
    for (const u of activeU) gRho[uGpu[u]!]! += st.loadOf(u, t) / gSpeed[uGpu[u]!]!;
    if (st.place.packByPeak) {
      gPeak.fill(0, 0, st.opened);
      for (const u of activeU) gPeak[uGpu[u]!]! += st.peakOf(u, t) / gSpeed[uGpu[u]!]!;
    }
    this.ix.rekeyLoads();
  }

  /** Arrivals at step t: missing replicas of running services, new services, training jobs. */
  arrivals(t: number): void {
    const st = this.st, S = st.S;
    for (const s of st.multi) this.fillReplicas(s, t);
    while (st.nextS < st.nS && S.start[st.nextS]! <= t) {
      const s = st.nextS++;
      if (S.end[s]! <= t) continue;
      st.sRep[s] = st.replicasFor(st.w.appLoad[S.app[s]!]![t]!);
      st.activeS.push(s);
      if (st.unitBase[s + 1]! - st.unitBase[s]! > 1) st.multi.push(s);
      this.fillReplicas(s, t);
    }
    while (st.nextT < st.nT && st.T.arrival[st.jobOrder[st.nextT]!]! <= t) this.placeTraining(st.jobOrder[st.nextT++]!);
  }
}
