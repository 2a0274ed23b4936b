import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NvidiaToolError } from './errors.ts';
import { firstLine, runTool, type NvidiaBinaries } from './exec.ts';

/** nvidia-cuda-mps-control's answer when no daemon listens on the pipe directory. */
const NO_DAEMON = /cannot find mps control daemon|control daemon not found/i;
/** Words of a refusal in an answer to a command that prints nothing when it works. */
/** terminate_client's answer when the server holds no CUDA context of the process (CUDA_ERROR_INVALID_CONTEXT). */
const NO_CLIENT_CONTEXT = 201;
const REFUSAL = /error|fail|invalid|not found|cannot|unknown|unrecognized|no such|denied/i;
/** AF_UNIX sun_path holds 107 bytes plus the terminator: a longer control socket path never binds. */
const SOCKET_PATH_MAX = 107;

export interface MpsControlOptions {
  binaries: NvidiaBinaries;
  /** CUDA_MPS_PIPE_DIRECTORY of this runner's daemon (never the system default /tmp/nvidia-mps). */
  pipeDir: string;
  /** CUDA_MPS_LOG_DIRECTORY of this runner's daemon. */
  logDir: string;
  /** The GPU this daemon serves, selected by UUID (CUDA_VISIBLE_DEVICES). */
  gpuUuid: string;
  /** Deadline of one control command (default 5 s): past it the daemon is reported hung. */
  commandTimeoutMs?: number;
  /** Where state-changing commands and their answers are reported. */
  log?: (line: string) => void;
}

/**
 * One MPS control daemon per GPU, owned by the runner: started with its own pipe and log directories,
 * talked to through `nvidia-cuda-mps-control` (one command on stdin per call, every answer checked).
 */
export class MpsControl {
  private readonly log: (line: string) => void;
  constructor(readonly o: MpsControlOptions) {
    this.log = o.log ?? (() => {});
  }

  /** The variables that make a process a client of this daemon, on this GPU. */
  clientEnv(): Record<string, string> {
    return { CUDA_MPS_PIPE_DIRECTORY: this.o.pipeDir, CUDA_MPS_LOG_DIRECTORY: this.o.logDir, CUDA_VISIBLE_DEVICES: this.o.gpuUuid };
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.clientEnv() };
  }

  /** Sends one command and returns the answer; a missing, hung or absent daemon is thrown as NvidiaToolError. */
  async command(cmd: string, timeoutMs = this.o.commandTimeoutMs ?? 5000): Promise<string> {
    const bin = this.o.binaries.mpsControl;
    let res;
    try {
      res = await runTool(bin, { input: `${cmd}\n`, env: this.env(), timeoutMs, overrideVar: 'GPUCOLO_MPS_CONTROL' });
    } catch (err) {
      if (err instanceof NvidiaToolError && err.kind === 'hung') {
        throw new NvidiaToolError(bin, 'hung', `MPS control daemon on ${this.o.pipeDir} did not answer "${cmd}" within ${timeoutMs} ms: it is hung (see ${this.o.logDir}/control.log)`, { cause: err });
      }
      throw err;
    }
    const text = `${res.stdout}\n${res.stderr}`;
    if (NO_DAEMON.test(text)) {
      throw new NvidiaToolError(bin, 'no-daemon', `no MPS control daemon runs on ${this.o.pipeDir} ("${cmd}": ${firstLine(text)})`);
    }
    if (res.code !== 0) {
      throw new NvidiaToolError(bin, 'failed', `MPS command "${cmd}" failed (exit ${res.code ?? res.signal}): ${firstLine(text) || 'no output'}`);
    }
    return res.stdout.trim();
  }

  /** True when a daemon answers on our pipe directory. */
  async isRunning(): Promise<boolean> {
    try {
      await this.serverList();
      return true;
    } catch (err) {
      if (err instanceof NvidiaToolError && err.kind === 'no-daemon') return false;
      // A daemon that answered something we do not read still answered.
      if (err instanceof NvidiaToolError && err.kind === 'unparsable') return true;
      throw err;
    }
  }

  /** Starts the daemon (`-d`) unless one already answers on the pipe directory; waits until it answers. */
  async start(readyTimeoutMs = 10_000): Promise<'started' | 'reused'> {
    const socket = join(this.o.pipeDir, 'control');
    if (Buffer.byteLength(socket) > SOCKET_PATH_MAX) {
      throw new NvidiaToolError(this.o.binaries.mpsControl, 'failed', `MPS control socket path ${socket} is longer than ${SOCKET_PATH_MAX} bytes and could never bind; use a shorter --state-dir`);
    }
    mkdirSync(this.o.pipeDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.o.logDir, { recursive: true, mode: 0o700 });
    if (await this.isRunning()) {
      this.log(`mps ${this.o.gpuUuid}: a daemon already answers on ${this.o.pipeDir}; using it`);
      await this.checkDefaultShare();
      return 'reused';
    }
    const bin = this.o.binaries.mpsControl;
    const res = await runTool(bin, { args: ['-d'], env: this.env(), timeoutMs: 10_000, overrideVar: 'GPUCOLO_MPS_CONTROL' });
    if (res.code !== 0) {
      throw new NvidiaToolError(bin, 'failed', `${bin} -d (pipe ${this.o.pipeDir}) failed (exit ${res.code ?? res.signal}): ${firstLine(`${res.stdout}\n${res.stderr}`) || 'no output'}`);
    }
    const end = Date.now() + readyTimeoutMs;
    for (;;) {
      if (await this.isRunning()) break;
      if (Date.now() > end) throw new NvidiaToolError(bin, 'no-daemon', `${bin} -d exited 0 but no daemon answers on ${this.o.pipeDir} after ${readyTimeoutMs} ms (see ${this.o.logDir}/control.log)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.log(`mps ${this.o.gpuUuid}: control daemon started (CUDA_MPS_PIPE_DIRECTORY=${this.o.pipeDir})`);
    await this.checkDefaultShare();
    return 'started';
  }

  /** The server-wide default active thread percentage (inference runs under it, so it should be 100). */
  async defaultActiveThreadPercentage(): Promise<number> {
    const answer = await this.command('get_default_active_thread_percentage');
    const pct = Number(answer.split(/\s+/).find((w) => /^\d+(\.\d+)?$/.test(w)));
    if (!Number.isFinite(pct)) throw this.unparsable('get_default_active_thread_percentage', answer);
    return pct;
  }

  private async checkDefaultShare(): Promise<void> {
    const pct = await this.defaultActiveThreadPercentage();
    if (pct < 100) this.log(`mps ${this.o.gpuUuid}: default active thread percentage is ${pct}: inference clients are capped at it too`);
  }

  /** PIDs of the MPS servers (`get_server_list`). */
  async serverList(): Promise<number[]> {
    return this.pids('get_server_list');
  }

  /** PIDs of the clients of one server (`get_client_list <PID>`). */
  async clientList(serverPid: number): Promise<number[]> {
    return this.pids(`get_client_list ${serverPid}`);
  }

  private async pids(cmd: string): Promise<number[]> {
    const answer = await this.command(cmd);
    const out: number[] = [];
    // One PID a line; tolerate decoration around it, refuse an answer that is an error.
    for (const line of answer.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const m = /\b(\d+)\b/.exec(line);
      if (!m || REFUSAL.test(line)) throw this.unparsable(cmd, answer);
      out.push(Number(m[1]));
    }
    return out;
  }

  private unparsable(cmd: string, answer: string): NvidiaToolError {
    return new NvidiaToolError(this.o.binaries.mpsControl, REFUSAL.test(answer) ? 'failed' : 'unparsable', `MPS command "${cmd}" answered ${JSON.stringify(answer.slice(0, 200))}`);
  }

  /**
   * Ends a client's outstanding GPU work through its server before the process may be killed, so a dying
   * client cannot fault the others. Returns the servers told; [] when no server is running.
   */
  async terminateClient(clientPid: number): Promise<number[]> {
    const servers = await this.serverList();
    if (servers.length === 0) {
      this.log(`mps ${this.o.gpuUuid}: terminate_client for ${clientPid}: no MPS server is running`);
      return [];
    }
    const owners: number[] = [];
    for (const s of servers) {
      try {
        if ((await this.clientList(s)).includes(clientPid)) owners.push(s);
      } catch (err) {
        if (!(err instanceof NvidiaToolError) || err.kind === 'hung' || err.kind === 'no-daemon') throw err;
      }
    }
    // A client that no list shows (a listing that lags, a daemon that does not list) is still sent to every server.
    const targets = owners.length ? owners : servers;
    const told: number[] = [];
    for (const s of targets) {
      const cmd = `terminate_client ${s} ${clientPid}`;
      const answer = await this.command(cmd);
      // The daemon answers a CUDA driver result code (driver 580, test/fixtures/nvidia/captured/): 201
      // (CUDA_ERROR_INVALID_CONTEXT) when that server holds no context of the process; words on older daemons.
      const code = /^\d+$/.test(answer) ? Number(answer) : null;
      if (code === NO_CLIENT_CONTEXT) {
        this.log(`mps ${this.o.gpuUuid}: ${cmd}: server ${s} holds no context of ${clientPid} (${answer})`);
        continue;
      }
      if (REFUSAL.test(answer) || (code !== null && code !== 0)) throw new NvidiaToolError(this.o.binaries.mpsControl, 'failed', `MPS command "${cmd}" was refused: ${firstLine(answer)}`);
      this.log(`mps ${this.o.gpuUuid}: ${cmd}: ok${answer ? ` (${firstLine(answer)})` : ''}`);
      told.push(s);
    }
    if (told.length === 0) {
      throw new NvidiaToolError(this.o.binaries.mpsControl, 'failed', `MPS command "terminate_client" was refused: no server (${targets.join(', ')}) holds a context of pid ${clientPid} (CUDA error ${NO_CLIENT_CONTEXT})`);
    }
    return told;
  }

  /** Servers reporting a fault (`get_server_status <PID>`); a daemon that does not know the command reports none. */
  async faultedServers(): Promise<number[]> {
    const faulted: number[] = [];
    for (const s of await this.serverList()) {
      let answer: string;
      try {
        answer = await this.command(`get_server_status ${s}`);
      } catch (err) {
        if (err instanceof NvidiaToolError && err.kind === 'failed') continue;
        throw err;
      }
      if (/fault/i.test(answer)) faulted.push(s);
    }
    return faulted;
  }

  /** Stops the daemon (`quit`) and waits until it no longer answers. */
  async quit(timeoutMs = 10_000): Promise<void> {
    try {
      await this.command('quit');
    } catch (err) {
      if (err instanceof NvidiaToolError && err.kind === 'no-daemon') return;
      throw err;
    }
    const end = Date.now() + timeoutMs;
    while (await this.isRunning()) {
      if (Date.now() > end) throw new NvidiaToolError(this.o.binaries.mpsControl, 'hung', `MPS control daemon on ${this.o.pipeDir} still answers ${timeoutMs} ms after quit`);
      await new Promise((r) => setTimeout(r, 100));
    }
    this.log(`mps ${this.o.gpuUuid}: control daemon stopped`);
  }
}
