import type { Pacing } from '../control/index.ts';

/** One finished inference request: when it finished and how long it took (device clock, ms). */
export interface Completion {
  tMs: number;
  latencyMs: number;
}

export interface GpuInfo {
  id: string;
  index: number;
  name: string;
  memoryMiB: number;
  backend: 'model' | 'nvidia';
  /** Model profile name for simulated GPUs. */
  profile?: string;
}

export type TrainingRunState = 'running' | 'restarting' | 'stopped';

export interface TrainingStatus {
  jobId: string;
  state: TrainingRunState;
  mpsSharePct: number;
  pacing: Pacing;
  /** Cumulative completed iterations since the job was created. */
  iterations: number;
}

/**
 * What the actors need from a GPU, real or simulated. All times are the device clock in ms.
 * Implemented by gpu/model (simulated) and gpu/nvidia (real).
 */
export interface GpuDevice {
  readonly info: GpuInfo;
  /** Device clock now, ms. */
  now(): number;
  /** Inference requests of one service that finished since the last call, plus arrivals counted. */
  takeCompletions(serviceId: string): { completions: Completion[]; arrivals: number };
  /** Change the offered load of a service (requests or batches per second). */
  setArrivalRate(serviceId: string, rateRps: number): void;
  /** Change a service's batch size (per-request service time follows it). */
  setBatch(serviceId: string, batch: number): void;
  /** Apply a sleep setting to a training job (cost: a few ms). */
  setPacing(jobId: string, pacing: Pacing): void;
  /** Change a training job's MPS share; restarts the job (cost: the profile's restart time). */
  setMpsShare(jobId: string, mpsSharePct: number): void;
  /**
   * Start or stop a training job; a stopped job is never left paused. A job that cannot checkpoint (canCheckpoint
   * false) is not stopped: it keeps running, held at the duty cap, until it is started again.
   */
  setTrainingRunning(jobId: string, running: boolean): void;
  /** Optional: false for a job that cannot checkpoint (a real GPU's "job that cannot be changed"); absent: it can. */
  canCheckpoint?(jobId: string): boolean;
  trainingStatus(jobId: string): TrainingStatus;
  /**
   * Optional, for the fleet actor's placements: start serving a service here (at `rateRps`), or place a
   * training job here (stopped: `setTrainingRunning(id, true)` starts it, with the restart cost). Adding an
   * id already present only sets its load (a service) or does nothing (a job).
   */
  addService?(service: { id: string; batch: number; rateRps: number }): void;
  addTraining?(job: { id: string; mpsSharePct: number; pacing: Pacing }): void;
  /** Optional: requests of a service waiting or in service now (a drain is done at 0). */
  inFlight?(serviceId: string): number;
  /**
   * Optional: tells the listener when the device's own machinery (the MPS daemon on a real GPU) becomes
   * faulty or healthy again, so the host runner can publish it. The simulated GPU never faults.
   */
  onHealth?(listener: (health: DeviceHealth) => void): void;
  /**
   * Optional: tells the listener when an inference service goes down (its process died, or its latency
   * endpoint does not answer) and when it is up again (a real GPU's workloads are processes of their own).
   * On registration the listener hears of every service down now.
   */
  onWorkload?(listener: (event: WorkloadHealth) => void): void;
  /**
   * Optional: the MPS share training is held at for good (a job that cannot checkpoint is never restarted
   * to change it); undefined when the share may change.
   */
  readonly fixedMpsSharePct?: number;
  close(): Promise<void>;
}

/** An inference service went down (its process exited, its latency endpoint went silent) or came back. */
export interface WorkloadHealth {
  serviceId: string;
  state: 'down' | 'up';
  detail: string;
}

/** A change in a device's health: `ok`, or what is wrong (fault, hung, no-daemon, missing, failed). */
export interface DeviceHealth {
  state: string;
  detail: string;
}
