import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'gpucolo.mjs');

/** A `gpucolo` process with its output collected. */
export interface CliProcess {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  exited: Promise<number | null>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stderr: () => err, stdout: () => out, exited };
}

/** The environment without anything that would point a child at another bus or credentials. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('NATS_') || k.startsWith('OTEL_')) delete env[k];
  return { ...env, ...extra };
}

/** A host's workloads file for fleet tests: four light GPUs, one training job; a fleet packs them and frees GPUs. */
export const FOUR_LIGHT_GPUS = {
  profile: 'rtx3090-resnet50-wrn101',
  gpus: [
    { services: [{ id: 'svc-0', sloMs: 25, batch: 2, rateRps: 25 }], trainings: [{ id: 'job-0' }] },
    { services: [{ id: 'svc-1', sloMs: 25, batch: 2, rateRps: 25 }], trainings: [] },
    { services: [{ id: 'svc-2', sloMs: 25, batch: 2, rateRps: 25 }], trainings: [] },
    { services: [{ id: 'svc-3', sloMs: 25, batch: 2, rateRps: 25 }], trainings: [] },
  ],
};
