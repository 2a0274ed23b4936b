import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BusUnavailableError } from './errors.ts';

/** Finds the nats-server binary: $NATS_SERVER_BIN, then PATH, then Debian's /usr/sbin. */
export function findNatsServer(): string | undefined {
  const candidates = [process.env.NATS_SERVER_BIN ?? ''];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir) candidates.push(join(dir, 'nats-server'));
  candidates.push('/usr/sbin/nats-server', '/usr/local/bin/nats-server', '/usr/bin/nats-server');
  for (const file of candidates) {
    if (!file) continue;
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here; try the next place
    }
  }
  return undefined;
}

/** A free TCP port on loopback, chosen by the kernel. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, deadlineMs: number, child: ChildProcess): Promise<void> {
  while (Date.now() < deadlineMs) {
    if (child.exitCode !== null) throw new BusUnavailableError(`nats-server exited with code ${child.exitCode} before it was ready`);
    const open = await new Promise<boolean>((resolve) => {
      const sock = tcpConnect(port, '127.0.0.1');
      sock.once('connect', () => { sock.destroy(); resolve(true); });
      sock.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new BusUnavailableError(`nats-server did not accept connections on 127.0.0.1:${port} in time`);
}

/** A private nats-server on a free loopback port (JetStream on, store in a temp dir). */
export interface LocalNatsServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<LocalNatsServer>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous kill on exit: a private server must never outlive the process that started it.
  process.on('exit', () => {
    for (const s of running) {
      try { process.kill(s.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
  });
}

/** Starts a private nats-server on a free loopback port; `stop()` (or process exit) ends it. */
export async function startLocalNatsServer(options: {
  startTimeoutMs?: number;
  maxPayloadBytes?: number;
  /** A nats-server configuration file (accounts, permissions, TLS); address, port and store stay ours. */
  configFile?: string;
  /** More nats-server arguments (cluster routes, a server name, ...). */
  args?: string[];
  /** Environment for the server (variables its configuration refers to). */
  env?: Record<string, string>;
  /** Port to listen on (default: a free one); a restarted server reuses its port so clients find it. */
  port?: number;
  /** JetStream store folder to use and keep (default: a temp folder removed on stop). */
  storeDir?: string;
} = {}): Promise<LocalNatsServer> {
  const bin = findNatsServer();
  if (!bin) {
    throw new BusUnavailableError(
      'nats-server not found: install it (Debian: apt-get install -y nats-server), set NATS_SERVER_BIN, or point NATS_URL at a running server',
    );
  }
  const port = options.port ?? await freePort();
  const ownStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'gpucolo-nats-'));
  const args = [...(options.configFile ? ['-c', options.configFile] : []), '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(options.args ?? [])];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false, env: { ...process.env, ...options.env } });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  try {
    await waitForPort(port, Date.now() + (options.startTimeoutMs ?? 10_000), child);
  } catch (err) {
    child.kill('SIGKILL');
    if (ownStore) rmSync(storeDir, { recursive: true, force: true });
    throw new BusUnavailableError(`${(err as Error).message}${stderr ? `\n${stderr}` : ''}`, { cause: err });
  }
  const server: LocalNatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid ?? -1,
    async stop() {
      if (!running.delete(server)) return;
      if (child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      if (ownStore) rmSync(storeDir, { recursive: true, force: true });
    },
  };
  running.add(server);
  installExitHook();
  return server;
}
