import { createSimGpuDevice, ManualClock, type GpuProfile } from '../model/index.ts';
import type { Plant } from './procedure.ts';

export const SIM_SERVICE_ID = 'inference';
export const SIM_JOB_ID = 'training';

/**
 * A simulated GPU to calibrate: one closed-loop inference service and one training job (stopped) on the
 * profile's plant, on a manual clock that `sleep` moves. The procedure gets the GpuDevice only, never the profile.
 */
export function simPlant(profile: GpuProfile, o: { batch: number; seed?: number; log?: (line: string) => void }): Plant {
  const clock = new ManualClock(0);
  const device = createSimGpuDevice({
    profile, clock: clock.now, seed: o.seed ?? 1,
    services: [{ id: SIM_SERVICE_ID, batch: o.batch, rateRps: 0, arrival: 'closed' }],
    trainings: [{ id: SIM_JOB_ID, mpsSharePct: 100, running: false }],
  });
  return {
    device, serviceId: SIM_SERVICE_ID, jobId: SIM_JOB_ID, batchSweep: true,
    sleep: async (ms) => { clock.advance(ms); },
    ...(o.log ? { log: o.log } : {}),
  };
}
