// A GPU's control state in the KV store: read at start (restore), written on every change (save).
import type { Actor } from 'xstate';
import type { gpuMachine } from '../../actors/index.ts';
import type { GpuStateStore, StateSaver, StoredState } from '../../bus/index.ts';
import { SCHEMA_VERSION, type GpuStateRecord } from '../../schemas/index.ts';

/** Reads a GPU's stored state; a failure to read is logged and the GPU starts afresh. */
export async function loadState(store: GpuStateStore, host: string, gpu: string, connectedAtMs: number, log: (l: string) => void): Promise<StoredState | undefined> {
  try {
    const got = await store.load(host, gpu, (why) => log(`state: ${why}; starting afresh`));
    if (got) {
      const { record: r, revision } = got;
      // How long a restarted runner took to get its state back: from its bus connection, and from process start.
      const sinceConnectMs = Math.round(performance.now() - connectedAtMs);
      log(`host ${host}: ${gpu} state restored from KV revision ${revision} (policy ${r.policy}, mps ${r.knobs.mpsSharePct}%, pacing ${JSON.stringify(r.knobs.pacing)}, SLO ${JSON.stringify(r.sloMs)}) ${sinceConnectMs} ms after the bus connected, ${Math.round(performance.now())} ms after process start`);
    }
    return got;
  } catch (err) {
    log(`state: cannot read ${host}/${gpu} from KV: ${(err as Error).message}; starting afresh`);
    return undefined;
  }
}

/** Saves a GPU actor's policy, SLOs and controller knobs whenever they change. */
export function keepStateSaved(gpu: Actor<typeof gpuMachine>, saver: StateSaver): StateSaver {
  let last = '';
  let seen: { policy: string; knobs: unknown; services: unknown } | undefined;
  gpu.subscribe((snap) => {
    const c = snap.context;
    // Nothing to say before the first latency window names the services (and their SLOs).
    if (Object.keys(c.services).length === 0) return;
    // In the safe setting the controller's own knobs are saved: the safe duty is re-derived from telemetry.
    const knobs = c.safe && c.preSafeKnobs ? c.preSafeKnobs : c.knobs;
    // The same policy, knobs object and services object as the last snapshot: nothing saved changed (the actor
    // makes new knobs and a new services object for every change of them), so no key is built for each window.
    if (seen && seen.policy === c.policyName && seen.knobs === knobs && seen.services === c.services) return;
    seen = { policy: c.policyName, knobs, services: c.services };
    const sloMs: Record<string, number> = {};
    for (const [id, sv] of Object.entries(c.services)) sloMs[id] = sv.sloMs;
    const key = JSON.stringify([c.policyName, knobs, sloMs]);
    if (key === last) return;
    last = key;
    const record: GpuStateRecord = { v: SCHEMA_VERSION, host: c.host, gpu: c.gpu, policy: c.policyName, knobs, sloMs, savedUnixMs: Date.now() };
    saver.schedule(record);
  });
  return saver;
}
