import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WorkloadError } from './errors.ts';

export interface LaunchSpec {
  /** `gpu0/resnet50`, for logs. */
  label: string;
  /** argv: the program and its arguments (no shell). */
  command: string[];
  cwd?: string;
  /** Added to the runner's environment. */
  env: Record<string, string>;
  onStdoutLine?: (line: string) => void;
  log: (line: string) => void;
  /** Keeps a record of the process from launch to exit (the runner's state directory). */
  owner?: { own(pid: number, label: string): void; disown(pid: number): void };
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * The variable that caps an MPS client's pinned GPU memory. The client sees only its GPU
 * (CUDA_VISIBLE_DEVICES is its UUID), so the limit is for device 0.
 */
export function memoryLimitEnv(memoryLimitMiB: number | undefined): Record<string, string> {
  return memoryLimitMiB === undefined ? {} : { CUDA_MPS_PINNED_DEVICE_MEM_LIMIT: `0=${memoryLimitMiB}M` };
}

export interface StopOptions {
  /** How long the process gets to save and exit after SIGTERM. */
  graceMs: number;
  /** Ends the client's GPU work through MPS; called before any SIGKILL. */
  terminateClient?: (pid: number) => Promise<void>;
  /** How long to wait after terminate_client before SIGKILL (default 5 s). */
  afterTerminateMs?: number;
}

/**
 * One workload process (inference or training), launched in its own process group so that signals reach
 * its children (data loader workers) and a terminal's Ctrl-C reaches only the runner, which then stops it
 * in order.
 */
export class WorkloadProcess {
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  exit: ExitInfo | undefined;
  private readonly child: ChildProcess;

  private constructor(child: ChildProcess, private readonly spec: LaunchSpec) {
    this.child = child;
    this.pid = child.pid!;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    if (child.stdout) createInterface({ input: child.stdout }).on('line', (l) => spec.onStdoutLine?.(l));
    if (child.stderr) createInterface({ input: child.stderr }).on('line', (l) => spec.log(`${spec.label}: ${l}`));
  }

  /** Starts the process; a program that cannot be started is a WorkloadError. */
  static launch(spec: LaunchSpec): WorkloadProcess {
    if (spec.command.length === 0) throw new WorkloadError(`${spec.label}: empty command`);
    const child = spawn(spec.command[0]!, spec.command.slice(1), {
      cwd: spec.cwd, env: { ...process.env, ...spec.env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.on('error', (err) => spec.log(`${spec.label}: ${err.message}`));
    if (child.pid === undefined) {
      throw new WorkloadError(`${spec.label}: cannot start ${JSON.stringify(spec.command[0])} (not found or not executable${spec.cwd ? ` in ${spec.cwd}` : ''})`);
    }
    const proc = new WorkloadProcess(child, spec);
    if (spec.owner) {
      spec.owner.own(proc.pid, spec.label);
      void proc.exited.then(() => spec.owner!.disown(proc.pid));
    }
    return proc;
  }

  running(): boolean {
    return this.exit === undefined;
  }

  /** Sends a signal to the process only (not its group). */
  signal(sig: NodeJS.Signals): void {
    try { process.kill(this.pid, sig); } catch { /* gone */ }
  }

  private signalGroup(sig: NodeJS.Signals): void {
    try { process.kill(-this.pid, sig); } catch { this.signal(sig); }
  }

  /**
   * The stop protocol: SIGTERM (the job saves and exits) and wait; past the grace, terminate_client
   * through MPS, wait again; only then SIGKILL the group. Resolves with how it ended.
   */
  async stop(o: StopOptions): Promise<{ exit: ExitInfo; how: 'exited' | 'sigterm' | 'terminate_client' | 'sigkill' }> {
    if (this.exit) return { exit: this.exit, how: 'exited' };
    // A stopped (paused) process cannot act on SIGTERM: let it run first.
    this.signalGroup('SIGCONT');
    this.signal('SIGTERM');
    let exit = await this.waitExit(o.graceMs);
    if (exit) return { exit, how: 'sigterm' };
    this.spec.log(`${this.spec.label}: pid ${this.pid} still running ${o.graceMs} ms after SIGTERM`);
    if (o.terminateClient) {
      try {
        await o.terminateClient(this.pid);
      } catch (err) {
        this.spec.log(`${this.spec.label}: terminate_client for pid ${this.pid} failed: ${(err as Error).message}`);
      }
      exit = await this.waitExit(o.afterTerminateMs ?? 5000);
      if (exit) return { exit, how: 'terminate_client' };
    }
    this.spec.log(`${this.spec.label}: killing pid ${this.pid} (SIGKILL)`);
    this.signalGroup('SIGKILL');
    exit = await this.waitExit(10_000);
    return { exit: exit ?? { code: null, signal: 'SIGKILL' }, how: 'sigkill' };
  }

  private async waitExit(ms: number): Promise<ExitInfo | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); });
    const result = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    return result;
  }
}
