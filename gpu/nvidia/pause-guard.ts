import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StateDirError } from './errors.ts';

/** A process group that a signal pacer may have stopped (SIGSTOP). */
export interface PausableEntry {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a reused PID from ours. Null where /proc is absent. */
  startTicks: string | null;
  label: string;
}

interface GuardFile {
  runnerPid: number;
  entries: PausableEntry[];
  /** Every workload process the runner launched and has not seen exit (stopped by the next start). */
  owned?: PausableEntry[];
}

/** Start time of a process (clock ticks since boot), or null when unknown. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** State of a process from /proc ('T' stopped, 'S' sleeping, 'R' running, 'Z' zombie), or null when gone. */
export function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGCONT to a process group and its leader, if it is still the process we launched. */
export function resumeEntry(e: PausableEntry): boolean {
  if (e.startTicks !== null && processStartTicks(e.pid) !== e.startTicks) return false;
  let ok = false;
  for (const target of [-e.pid, e.pid]) {
    try { process.kill(target, 'SIGCONT'); ok = true; } catch { /* gone */ }
  }
  return ok;
}

/**
 * Runs detached from the runner with plain node: when the runner's PID is gone (any death, SIGKILL
 * included) it resumes every group listed in the guard file, removes the file and exits.
 */
const WATCHDOG_SOURCE = String.raw`
const fs = require('node:fs');
const runner = Number(process.argv[1]);
const file = process.argv[2];
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const ticks = (pid) => { try { const s = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' ')[19]; } catch { return null; } };
const tick = () => {
  if (process.ppid === runner && alive(runner)) return;
  let state = null;
  try { state = JSON.parse(fs.readFileSync(file, 'utf8')); } catch {}
  if (state && state.runnerPid === runner) {
    for (const e of state.entries) {
      if (e.startTicks !== null && ticks(e.pid) !== e.startTicks) continue;
      for (const t of [-e.pid, e.pid]) { try { process.kill(t, 'SIGCONT'); } catch {} }
    }
    // Keep the record of launched workloads for the next start, which stops them.
    try {
      if (state.owned && state.owned.length) fs.writeFileSync(file, JSON.stringify({ runnerPid: runner, entries: [], owned: state.owned }));
      else fs.rmSync(file, { force: true });
    } catch {}
  }
  process.exit(0);
};
setInterval(tick, 100);
process.on('SIGTERM', () => process.exit(0));
`;

export interface PauseGuardOptions {
  stateDir: string;
  log?: (line: string) => void;
  /** Start the detached watchdog (default true). */
  watchdog?: boolean;
}

/**
 * Makes sure no process a signal pacer stopped stays stopped: the groups that may be paused are written
 * to `<stateDir>/paused.json` before the first SIGSTOP; every exit of the runner resumes them
 * (normal stop, signals, uncaught exceptions through process 'exit'); a detached watchdog resumes them
 * when the runner dies without running any code (SIGKILL); and the next start resumes what is left.
 */
export class PauseGuard {
  readonly file: string;
  private readonly entries = new Map<number, PausableEntry>();
  private readonly owned = new Map<number, PausableEntry>();
  /** Workloads a dead runner left running, found by start(); reapLeftovers() stops them. */
  private leftovers: PausableEntry[] = [];
  private readonly log: (line: string) => void;
  private watchdogProcess: ChildProcess | undefined;
  private readonly onExit = () => this.resumeAll();
  private installed = false;

  constructor(private readonly o: PauseGuardOptions) {
    this.file = join(o.stateDir, 'paused.json');
    this.log = o.log ?? (() => {});
  }

  /**
   * Claims the state directory: resumes what a dead runner left paused, refuses a directory that a
   * live runner holds, then installs the exit hook and the watchdog.
   */
  start(): { resumed: PausableEntry[] } {
    mkdirSync(this.o.stateDir, { recursive: true, mode: 0o700 });
    const resumed = this.recover();
    if (!this.installed) {
      process.on('exit', this.onExit);
      this.installed = true;
    }
    this.write();
    if (this.o.watchdog !== false) {
      const child = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(process.pid), this.file], { detached: true, stdio: 'ignore', env: {} });
      child.on('error', (err) => this.log(`pause watchdog could not start: ${err.message}`));
      child.unref();
      this.watchdogProcess = child;
    }
    return { resumed };
  }

  private recover(): PausableEntry[] {
    let left: GuardFile | undefined;
    try {
      left = JSON.parse(readFileSync(this.file, 'utf8')) as GuardFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log(`ignoring unreadable ${this.file}: ${(err as Error).message}`);
      return [];
    }
    if (left.runnerPid !== process.pid && isAlive(left.runnerPid) && processState(left.runnerPid) !== 'Z') {
      throw new StateDirError(`state directory ${this.o.stateDir} belongs to a running gpucolo host runner (pid ${left.runnerPid}); stop it or use another --state-dir`);
    }
    const resumed = (left.entries ?? []).filter((e) => resumeEntry(e));
    for (const e of resumed) this.log(`resumed ${e.label} (pid ${e.pid}) left paused by a previous runner (pid ${left.runnerPid})`);
    this.leftovers = (left.owned ?? []).filter((e) => isAlive(e.pid) && (e.startTicks === null || processStartTicks(e.pid) === e.startTicks));
    // Until they are reaped they stay on record, so a crash now still finds them next time.
    for (const e of this.leftovers) this.owned.set(e.pid, e);
    rmSync(this.file, { force: true });
    return resumed;
  }

  /**
   * Stops the workloads a dead runner launched and left running (they would otherwise share the GPU
   * with the ones this runner launches): SIGCONT and SIGTERM to each group (a training job saves its
   * checkpoint), SIGKILL after the grace. Resolves with what was stopped.
   */
  async reapLeftovers(graceMs = 10_000): Promise<PausableEntry[]> {
    const left = this.leftovers;
    this.leftovers = [];
    const same = (e: PausableEntry) => isAlive(e.pid) && processState(e.pid) !== 'Z' && (e.startTicks === null || processStartTicks(e.pid) === e.startTicks);
    for (const e of left) {
      this.log(`stopping ${e.label} (pid ${e.pid}) left running by a previous runner`);
      for (const [t, sig] of [[-e.pid, 'SIGCONT'], [e.pid, 'SIGCONT'], [e.pid, 'SIGTERM']] as const) {
        try { process.kill(t, sig); } catch { /* gone */ }
      }
    }
    const end = Date.now() + graceMs;
    while (left.some(same) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    for (const e of left.filter(same)) {
      this.log(`killing ${e.label} (pid ${e.pid}): still running ${graceMs} ms after SIGTERM`);
      for (const t of [-e.pid, e.pid]) { try { process.kill(t, 'SIGKILL'); } catch { /* gone */ } }
    }
    for (const e of left) this.owned.delete(e.pid);
    this.write();
    return left;
  }

  /** Records a workload process this runner launched (stopped by the next start if this runner dies). */
  own(pid: number, label: string): void {
    this.owned.set(pid, { pid, startTicks: processStartTicks(pid), label });
    this.write();
  }

  /** Forgets a workload process that exited. */
  disown(pid: number): void {
    if (this.owned.delete(pid)) this.write();
  }

  /** Records a process group before anything may stop it. */
  register(pid: number, label: string): void {
    this.entries.set(pid, { pid, startTicks: processStartTicks(pid), label });
    this.write();
  }

  /** Forgets a process group (it exited, or is no longer signal-paced). */
  unregister(pid: number): void {
    if (this.entries.delete(pid)) this.write();
  }

  /** Resumes every registered group now (synchronous: safe inside process 'exit'). */
  resumeAll(): void {
    for (const e of this.entries.values()) resumeEntry(e);
  }

  /** Resumes everything, removes the file, stops the watchdog and the exit hook. */
  close(): void {
    this.resumeAll();
    this.entries.clear();
    this.owned.clear();
    rmSync(this.file, { force: true });
    if (this.installed) process.off('exit', this.onExit);
    this.installed = false;
    try { this.watchdogProcess?.kill('SIGTERM'); } catch { /* already gone */ }
    this.watchdogProcess = undefined;
  }

  private write(): void {
    const body: GuardFile = { runnerPid: process.pid, entries: [...this.entries.values()], owned: [...this.owned.values()] };
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(body));
    renameSync(tmp, this.file);
  }
}
