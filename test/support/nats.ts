import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { freePort, startLocalNatsServer, type LocalNatsServer } from '../../bus/index.ts';

/** What the launcher takes: a config file (auth, nkeys, TLS), more arguments (cluster routes), env, port, store. */
export type NatsOptions = NonNullable<Parameters<typeof startLocalNatsServer>[0]>;

const stores = new Set<string>();
let exitHook = false;
function ownStore(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gc-nats-'));
  stores.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => { for (const d of stores) rmSync(d, { recursive: true, force: true }); });
  }
  return dir;
}

/**
 * A real nats-server for a test (bus/server.ts finds it: $NATS_SERVER_BIN, PATH, /usr/sbin), JetStream on, on
 * loopback. Its port and JetStream store are fixed when it starts, so `kill()` then `restart()` brings the same
 * server back where its clients look for it, with its streams and KV.
 */
export class TestNats {
  private constructor(
    private server: LocalNatsServer,
    private readonly options: NatsOptions & { port: number; storeDir: string },
    private readonly ownsStore: boolean,
  ) {}

  static async start(options: NatsOptions = {}): Promise<TestNats> {
    const owns = options.storeDir === undefined;
    const fixed = { ...options, port: options.port ?? await freePort(), storeDir: options.storeDir ?? ownStore() };
    try {
      return new TestNats(await startLocalNatsServer(fixed), fixed, owns);
    } catch (err) {
      if (owns) { rmSync(fixed.storeDir, { recursive: true, force: true }); stores.delete(fixed.storeDir); }
      throw err;
    }
  }

  get url(): string { return this.server.url; }
  get port(): number { return this.server.port; }
  get pid(): number { return this.server.pid; }

  /** SIGKILL, as a crash: the store stays for `restart()`. */
  async kill(): Promise<void> {
    try { process.kill(this.server.pid, 'SIGKILL'); } catch { /* already gone */ }
    await this.server.stop();
  }

  /** Starts it again on the same port and store (after `kill()` or `stop()`). */
  async restart(): Promise<void> {
    this.server = await startLocalNatsServer(this.options);
  }

  /** Stops it and removes the store it made; again is harmless. */
  async stop(): Promise<void> {
    await this.server.stop();
    if (this.ownsStore && stores.delete(this.options.storeDir)) rmSync(this.options.storeDir, { recursive: true, force: true });
  }
}

export const startNats = (options: NatsOptions = {}) => TestNats.start(options);

/** `size` nodes on loopback routed into one cluster `name` (node i is named `name-i`, from 1). */
export async function startNatsCluster(size = 3, name = 'colo'): Promise<TestNats[]> {
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) routePorts.push(await freePort());
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(',');
  return await Promise.all(routePorts.map((p, i) => startNats({
    args: ['-n', `${name}-${i + 1}`, '--cluster_name', name, '--cluster', `nats://127.0.0.1:${p}`, '--routes', routes],
  })));
}

/** A file's nats-server: started in its before(), stopped in its after(); read it inside tests. */
export interface NatsFixture {
  readonly server: TestNats;
  readonly url: string;
  readonly port: number;
  /** A plain NATS client on it (`raw: true`): what an independent system sees. */
  readonly raw: NatsConnection;
}

export type FixtureOptions = NatsOptions & { raw?: boolean };

/**
 * Registers before()/after() hooks that start and stop a nats-server for the file's tests (and, with `raw`, a
 * plain client, closed first). Options may be a function, called in before() (to write a config there).
 * A file's top-level before() hooks all start at once (Node 20), so what needs the server goes in `started`,
 * run in the same hook once it is up. after() hooks run one by one in the order they were registered: one
 * registered before useNats runs before the server stops, one registered after it runs after.
 */
export function useNats(
  options: FixtureOptions | (() => FixtureOptions | Promise<FixtureOptions>) = {},
  started?: (nats: NatsFixture) => void | Promise<void>,
): NatsFixture {
  let server: TestNats | undefined;
  let raw: NatsConnection | undefined;
  before(async () => {
    const { raw: wantRaw, ...rest } = typeof options === 'function' ? await options() : options;
    server = await startNats(rest);
    if (wantRaw) raw = await connect({ servers: server.url });
    await started?.(fixture);
  });
  after(async () => {
    await raw?.close();
    await server?.stop();
  });
  const up = () => {
    if (!server) throw new Error('useNats: the nats-server starts in before(); read it inside a test or in `started`');
    return server;
  };
  const fixture: NatsFixture = {
    get server() { return up(); },
    get url() { return up().url; },
    get port() { return up().port; },
    get raw() {
      if (!raw) throw new Error('useNats: pass { raw: true } for a plain client');
      return raw;
    },
  };
  return fixture;
}
