import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One readiness check: undefined when fine, else why not (`not connected to NATS`). */
export type ReadinessCheck = () => Promise<string | undefined> | string | undefined;

export interface HealthServerOptions {
  /** TCP port; 0 picks a free one (the bound port is in `port`). */
  port: number;
  /** Address to bind (default 0.0.0.0: kubelets and load balancers probe from outside the host). */
  host?: string;
  /** Named readiness checks, run on every /readyz; a check that throws or takes over `checkTimeoutMs` fails. */
  checks: Record<string, ReadinessCheck>;
  checkTimeoutMs?: number;
}

export interface HealthServer {
  host: string;
  port: number;
  /** Marks the process stopping: /readyz fails at once (so traffic and probes move on), /healthz stays up. */
  stopping(): void;
  close(): Promise<void>;
}

/** Thrown when the health port cannot be bound (taken, or not permitted). */
export class HealthPortError extends Error {
  override name = 'HealthPortError';
}

/**
 * Serves `/healthz` (liveness: 200 while the process serves HTTP) and `/readyz` (readiness: 200 when every
 * check passes, else 503 with the failing checks), both as JSON, GET or HEAD.
 */
export async function startHealthServer(o: HealthServerOptions): Promise<HealthServer> {
  const timeoutMs = o.checkTimeoutMs ?? 1000;
  let isStopping = false;
  const run = async (check: ReadinessCheck): Promise<string | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((r) => { timer = setTimeout(() => r(`no answer within ${timeoutMs} ms`), timeoutMs); });
    try {
      return await Promise.race([Promise.resolve().then(check), late]);
    } catch (err) {
      return (err as Error)?.message ?? String(err);
    } finally {
      clearTimeout(timer);
    }
  };
  const send = (req: IncomingMessage, res: ServerResponse, code: number, body: unknown) => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(req, res, 405, { error: 'use GET or HEAD' });
    if (path === '/healthz') return send(req, res, 200, { status: 'ok' });
    if (path !== '/readyz') return send(req, res, 404, { error: 'not found: use /healthz or /readyz' });
    void (async () => {
      const checks: Record<string, string> = {};
      if (isStopping) checks.process = 'stopping';
      const names = Object.keys(o.checks);
      const results = await Promise.all(names.map((n) => run(o.checks[n]!)));
      names.forEach((n, i) => { checks[n] = results[i] ?? 'ok'; });
      const ready = Object.values(checks).every((v) => v === 'ok');
      send(req, res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
    })().catch(() => send(req, res, 500, { status: 'error' }));
  });
  // Probes hold no keep-alive state worth keeping: never let one keep a stopped runner alive.
  server.keepAliveTimeout = 1000;
  const host = o.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use' : err.code === 'EACCES' ? 'not permitted' : err.message;
      reject(new HealthPortError(`--health-port: cannot listen on ${host}:${o.port}: ${why}`, { cause: err }));
    });
    server.listen(o.port, host, () => resolve());
  });
  server.unref();
  return {
    host,
    port: (server.address() as AddressInfo).port,
    stopping: () => { isStopping = true; },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Parses `--health-port`: `PORT` or `HOST:PORT` (0 = a free port). */
export function parseHealthPort(raw: string): { host?: string; port: number } {
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new RangeError(`--health-port must be PORT or HOST:PORT with PORT 0-65535, got ${JSON.stringify(raw)}`);
  return m[1] ? { host: m[1].replace(/^\[|\]$/g, ''), port } : { port };
}
