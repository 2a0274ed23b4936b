import { spawn } from 'node:child_process';
import { NvidiaToolError } from './errors.ts';

/** The NVIDIA binaries we call; each can be overridden by an environment variable, default is PATH lookup. */
export interface NvidiaBinaries {
  nvidiaSmi: string;
  mpsControl: string;
}

/** Binaries from GPUCOLO_NVIDIA_SMI / GPUCOLO_MPS_CONTROL, else the plain names (found on PATH). */
export function binariesFromEnv(env: NodeJS.ProcessEnv = process.env, flags: Partial<NvidiaBinaries> = {}): NvidiaBinaries {
  return {
    nvidiaSmi: flags.nvidiaSmi || env.GPUCOLO_NVIDIA_SMI || 'nvidia-smi',
    mpsControl: flags.mpsControl || env.GPUCOLO_MPS_CONTROL || 'nvidia-cuda-mps-control',
  };
}

/** How long output may still arrive after a tool exited while something it forked holds its pipes. */
const EXIT_DRAIN_MS = 50;

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunToolOptions {
  args?: string[];
  /** Written to stdin, then stdin is closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** The variable that overrides this binary, named in the "missing" message. */
  overrideVar?: string;
}

/**
 * Runs a tool to completion and returns what it printed. A missing binary and a deadline passed are
 * thrown as NvidiaToolError; a non-zero exit is returned for the caller to judge.
 */
export function runTool(binary: string, o: RunToolOptions = {}): Promise<ToolResult> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    let settled = false;
    const child = spawn(binary, o.args ?? [], { env: o.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new NvidiaToolError(binary, 'hung', `${binary} ${(o.args ?? []).join(' ')}${o.input ? ` <<< ${JSON.stringify(o.input.trim())}` : ''} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'EACCES') {
        const how = o.overrideVar ? ` (install the NVIDIA driver utilities, or set ${o.overrideVar} to its path)` : '';
        reject(new NvidiaToolError(binary, 'missing', `${binary} ${err.code === 'ENOENT' ? 'was not found' : 'is not executable'}${binary.includes('/') ? '' : ' on PATH'}${how}`, { cause: err }));
      } else {
        reject(new NvidiaToolError(binary, 'failed', `${binary} could not be started: ${err.message}`, { cause: err }));
      }
    });
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    };
    child.on('close', finish);
    // The tool's exit is its answer, not the end of its pipes: `nvidia-cuda-mps-control -d` forks a daemon
    // that may keep the inherited stdout open for its whole life. What the tool wrote before it exited is
    // already in the pipe: read it for a moment, then let go of the pipes (the daemon keeps its end).
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        if (settled) return;
        finish(code, signal);
        child.stdout.destroy();
        child.stderr.destroy();
      }, EXIT_DRAIN_MS);
    });
    // A tool that exits before reading stdin makes the write fail with EPIPE: its exit code tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(o.input ?? '');
  });
}

/** The first non-empty line of a tool's output, for error messages. */
export function firstLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}
