import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'gpucolo.mjs');
export const FAKE_BIN = join(ROOT, 'test', 'fake-bin');
export const FIXTURES = join(ROOT, 'test', 'fixtures', 'nvidia');
export const STANDIN = join(FIXTURES, 'workloads');
export const FAKE_SMI = join(FAKE_BIN, 'nvidia-smi');
export const FAKE_MPS = join(FAKE_BIN, 'nvidia-cuda-mps-control');

export const GPU0_UUID = 'GPU-4a8b4ea6-0c0f-7a3c-5f0e-1d2b3c4d5e6f';
export const GPU2_UUID = 'GPU-0e1d2c3b-4a59-6877-9695-a4b3c2d1e0f9';

/** A short temporary folder (MPS control sockets must fit in 107 bytes). */
export function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gc-${tag}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The environment with the fake NVIDIA tools first on PATH. */
export function fakeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${FAKE_BIN}:${process.env.PATH ?? ''}`, ...extra };
  delete env.GPUCOLO_NVIDIA_SMI;
  delete env.GPUCOLO_MPS_CONTROL;
  return env;
}

/** The shared waits, for the nvidia tests that take everything from here. */
export { sleep, until } from '../support/wait.ts';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the gpucolo CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`gpucolo ${args.join(' ')} ran past ${timeoutMs} ms\n${stderr.slice(-3000)}`)); }, timeoutMs);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** JSON lines of a file ([] when it does not exist). */
export function jsonLines<T = Record<string, unknown>>(file: string): T[] {
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { return []; }
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

export function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Kills processes a test left (by pid, one by one) and stops fake MPS daemons on the given pipe dirs. */
export function cleanup(pids: number[], pipeDirs: string[] = []): void {
  for (const pid of pids) { try { process.kill(-pid, 'SIGKILL'); } catch { /* not a group */ } try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  for (const dir of pipeDirs) spawnSync(FAKE_MPS, [], { input: 'quit\n', env: { ...process.env, CUDA_MPS_PIPE_DIRECTORY: dir }, timeout: 5000 });
}
