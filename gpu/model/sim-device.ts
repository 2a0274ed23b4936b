import type { Pacing } from '../../control/index.ts';
import type { Completion, GpuDevice, GpuInfo, TrainingStatus } from '../index.ts';
import { GpuModel, type GpuModelOptions } from './gpu-model.ts';
import type { GpuProfile } from './profile-schema.ts';
import { loadProfile } from './profiles.ts';

/** Device clock in ms; injected so tests and the fleet simulator run faster than real time. */
export type ClockMs = () => number;

/** A clock that moves only when told to: the test version of a device clock. */
export class ManualClock {
  private t: number;
  constructor(startMs = 0) {
    this.t = startMs;
  }
  /** The clock function to inject. */
  readonly now: ClockMs = () => this.t;
  /** Move forward by dtMs. */
  advance(dtMs: number): void {
    this.t += dtMs;
  }
  /** Jump to tMs (never backwards). */
  set(tMs: number): void {
    this.t = Math.max(this.t, tMs);
  }
}

export interface SimGpuDeviceIdentity {
  id?: string;
  index?: number;
}

/** A GpuDevice backed by the simulated GPU: every call first brings the model up to the clock. */
export class SimGpuDevice implements GpuDevice {
  readonly info: GpuInfo;

  constructor(
    readonly model: GpuModel,
    private readonly clock: ClockMs,
    identity: SimGpuDeviceIdentity = {},
  ) {
    const index = identity.index ?? 0;
    this.info = {
      id: identity.id ?? `sim-${index}`,
      index,
      name: `${model.profile.gpu.name} (simulated)`,
      memoryMiB: model.profile.gpu.memoryMiB,
      backend: 'model',
      profile: model.profile.name,
    };
  }

  /** Device clock now, ms (the model is advanced to it). */
  now(): number {
    return this.sync();
  }

  /** Completions of one service since the last call, and arrivals counted. */
  takeCompletions(serviceId: string): { completions: Completion[]; arrivals: number } {
    this.sync();
    return this.model.takeCompletions(serviceId);
  }

  /** Change a service's offered load. */
  setArrivalRate(serviceId: string, rateRps: number): void {
    this.sync();
    this.model.setArrivalRate(serviceId, rateRps);
  }

  /** Change a service's batch size. */
  setBatch(serviceId: string, batch: number): void {
    this.sync();
    this.model.setBatch(serviceId, batch);
  }

  /** Apply a sleep setting (takes effect after the model's sleepChangeMs). */
  setPacing(jobId: string, pacing: Pacing): void {
    this.sync();
    this.model.setPacing(jobId, pacing);
  }

  /** Change the MPS share (restarts the job for the model's mpsRestartMs). */
  setMpsShare(jobId: string, mpsSharePct: number): void {
    this.sync();
    this.model.setMpsShare(jobId, mpsSharePct);
  }

  /** Start or stop a training job. */
  setTrainingRunning(jobId: string, running: boolean): void {
    this.sync();
    this.model.setTrainingRunning(jobId, running);
  }

  /** A training job's status now. */
  trainingStatus(jobId: string): TrainingStatus {
    this.sync();
    return this.model.trainingStatus(jobId);
  }

  /** Starts serving a service here (the fleet placed it). */
  addService(service: { id: string; batch: number; rateRps: number }): void {
    this.sync();
    this.model.placeService(service);
  }

  /** Places a training job here, stopped until setTrainingRunning(id, true). */
  addTraining(job: { id: string; mpsSharePct: number; pacing: Pacing }): void {
    this.sync();
    this.model.placeTraining(job);
  }

  /** Requests of a service waiting or in service now. */
  inFlight(serviceId: string): number {
    this.sync();
    return this.model.serviceStats(serviceId).inSystem;
  }

  /** Nothing to release: the model holds no processes, sockets or timers. */
  async close(): Promise<void> {}

  private sync(): number {
    const t = this.clock();
    this.model.advanceTo(t);
    return Math.max(t, this.model.nowMs);
  }
}

export interface CreateSimGpuDeviceOptions extends Omit<GpuModelOptions, 'profile'>, SimGpuDeviceIdentity {
  /** A built-in profile name, a profile file (see loadProfile), or a profile object. */
  profile: string | GpuProfile;
  clock: ClockMs;
}

/** Build a model and its device in one call; the model starts at the clock's current reading. */
export function createSimGpuDevice(options: CreateSimGpuDeviceOptions): SimGpuDevice {
  const { profile, clock, id, index, ...modelOptions } = options;
  const resolved = typeof profile === 'string' ? loadProfile(profile) : profile;
  const model = new GpuModel({ startMs: clock(), ...modelOptions, profile: resolved });
  return new SimGpuDevice(model, clock, { id, index });
}
