import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** Date.now() when the process exited. */
  exitUnixMs: number;
}

/** Runs the real CLI in a child process. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<CliResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`gpucolo ${args.join(' ')} timed out; stderr: ${stderr.slice(-2000)}`)); }, timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, wallMs: performance.now() - t0, exitUnixMs: Date.now() }); });
  });
}

/** A TCP port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A TCP server that accepts connections and never answers: a collector that hangs. */
export async function blackhole(): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const s = createTcpServer((sock) => { connections++; sockets.add(sock); sock.on('error', () => {}); sock.resume(); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    port: (s.address() as AddressInfo).port,
    connections: () => connections,
    close: () => new Promise<void>((r) => { for (const k of sockets) k.destroy(); s.close(() => r()); }),
  };
}

// OTLP/JSON as the collector receives it.
export interface OtlpValue { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } }
export interface OtlpKeyValue { key: string; value: OtlpValue }
export interface OtlpSpan {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number;
  attributes?: OtlpKeyValue[]; links?: { traceId: string; spanId: string }[];
}
export interface CollectedSpan extends OtlpSpan { service: string; instance?: string; attrs: Record<string, unknown> }

export function otlpValue(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(otlpValue);
  return undefined;
}

const attrMap = (kvs: OtlpKeyValue[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, otlpValue(kv.value)]));

/** A real OTLP/HTTP JSON collector: parses /v1/traces and /v1/metrics bodies. */
export class TestCollector {
  readonly spans: CollectedSpan[] = [];
  readonly metricNames = new Set<string>();
  readonly contentTypes = new Set<string>();
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => { body += c; });
      req.on('end', () => {
        this.contentTypes.add(String(req.headers['content-type']));
        try {
          const json = JSON.parse(body) as Record<string, unknown[]>;
          if (req.url === '/v1/traces') this.addTraces(json);
          if (req.url === '/v1/metrics') this.addMetrics(json);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  private addTraces(json: Record<string, unknown[]>): void {
    for (const rs of (json.resourceSpans ?? []) as { resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[]) {
      const resource = attrMap(rs.resource?.attributes);
      const service = String(resource['service.name']);
      const instance = resource['service.instance.id'] === undefined ? {} : { instance: String(resource['service.instance.id']) };
      for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) this.spans.push({ ...s, service, ...instance, attrs: attrMap(s.attributes) });
    }
  }

  private addMetrics(json: Record<string, unknown[]>): void {
    for (const rm of (json.resourceMetrics ?? []) as { scopeMetrics?: { metrics?: { name: string }[] }[] }[]) {
      for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) this.metricNames.add(m.name);
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
