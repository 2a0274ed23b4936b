import { Kvm, type KV } from '@nats-io/kv';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { GpuStateRecord } from '../schemas/index.ts';
import type { Bus } from './bus.ts';
import { decode, encode } from './codec.ts';
import { clusterReplicas } from './events-stream.ts';

/** The JetStream KV bucket holding each GPU's control state, key `<host>.<gpu>`. */
export const STATE_BUCKET = 'colo_state';

const checkRecord = TypeCompiler.Compile(GpuStateRecord);

/** Another writer changed a GPU's state since this runner read it (two runners with one host id?). */
export class StateConflictError extends Error {
  override name = 'StateConflictError';
}

/** A stored record and the revision it was read at (the compare-and-set token of the next write). */
export interface StoredState {
  record: GpuStateRecord;
  revision: number;
}

/**
 * Per-GPU control state in JetStream KV, written with revision compare-and-set so two runners that
 * claim the same GPU find out instead of overwriting each other.
 */
export class GpuStateStore {
  private readonly revisions = new Map<string, number>();

  private constructor(private readonly kv: KV) {}

  /** Opens (creating when missing) the bucket; undefined, with the reason, when JetStream is unavailable. */
  static async open(bus: Bus, options: { timeoutMs?: number; attempts?: number } = {}): Promise<{ store?: GpuStateStore; reason?: string }> {
    const kvm = new Kvm(bus.nc);
    const timeout = options.timeoutMs ?? 2000;
    // A cluster still electing its JetStream leader answers with timeouts: a few more tries. No JetStream
    // at all answers at once: no retry.
    for (let attempt = 1; ; attempt++) {
      const got = await GpuStateStore.tryOpen(bus, kvm, timeout);
      if (got.store || attempt >= (options.attempts ?? 3) || !/timeout/i.test(got.reason ?? '')) return got;
    }
  }

  private static async tryOpen(bus: Bus, kvm: Kvm, timeout: number): Promise<{ store?: GpuStateStore; reason?: string }> {
    try {
      // create() binds to the bucket when it exists (open() would not check that it does). In a
      // cluster, three copies so the state outlives a node; fewer nodes than that: one.
      const replicas = clusterReplicas(bus);
      const kv = await kvm.create(STATE_BUCKET, { history: 5, timeout, replicas }).catch((err) => {
        if (replicas === 1) throw err;
        return kvm.create(STATE_BUCKET, { history: 5, timeout });
      });
      return { store: new GpuStateStore(kv) };
    } catch (err) {
      return { reason: (err as Error).message };
    }
  }

  static key(host: string, gpu: string): string {
    return `${host}.${gpu}`;
  }

  /** The stored state of a GPU; undefined when none, or when what is stored is not a valid record (reported through `invalid`). */
  async load(host: string, gpu: string, invalid: (why: string) => void = () => {}): Promise<StoredState | undefined> {
    const key = GpuStateStore.key(host, gpu);
    // A timeout (a cluster electing a leader) is worth two more tries: starting afresh would lose the state.
    let entry: Awaited<ReturnType<KV['get']>> = null;
    for (let attempt = 1; ; attempt++) {
      try {
        entry = await this.kv.get(key);
        break;
      } catch (err) {
        if (attempt >= 3 || !/timeout/i.test((err as Error).message)) throw err;
      }
    }
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    this.revisions.set(key, entry.revision);
    let record: unknown;
    try {
      record = decode(entry.value);
    } catch (err) {
      invalid(`KV ${STATE_BUCKET}/${key} revision ${entry.revision} is not msgpack: ${(err as Error).message}`);
      return undefined;
    }
    if (!checkRecord.Check(record) || record.host !== host || record.gpu !== gpu) {
      const first = checkRecord.Errors(record).First();
      invalid(`KV ${STATE_BUCKET}/${key} revision ${entry.revision} is not a GPU state record${first ? `: ${first.path} ${first.message}` : ' of this GPU'}`);
      return undefined;
    }
    return { record, revision: entry.revision };
  }

  /**
   * Writes a GPU's state if nobody else wrote since this store last read or wrote it; returns the new
   * revision. Throws StateConflictError otherwise (and forgets the revision, so the next save re-reads).
   */
  async save(record: GpuStateRecord): Promise<number> {
    const key = GpuStateStore.key(record.host, record.gpu);
    const known = this.revisions.get(key);
    try {
      const revision = known === undefined
        ? await this.kv.create(key, encode(record))
        : await this.kv.update(key, encode(record), known);
      this.revisions.set(key, revision);
      return revision;
    } catch (err) {
      const message = (err as Error).message;
      if (/wrong last sequence|key exists/i.test(message)) {
        this.revisions.delete(key);
        const now = await this.kv.get(key).catch(() => null);
        if (now) this.revisions.set(key, now.revision);
        throw new StateConflictError(`KV ${STATE_BUCKET}/${key} changed under this runner (expected revision ${known ?? 'none'}, now ${now?.revision ?? 'unknown'}): is another runner using host id ${record.host}?`, { cause: err });
      }
      throw err;
    }
  }
}

/** Pause before trying a failed save again; doubled after each failure in a row, up to RETRY_MAX_MS. */
const RETRY_MS = 500;
const RETRY_MAX_MS = 5_000;
/** How long `close()` keeps trying to save what is pending by default. */
const CLOSE_MS = 5_000;

/**
 * Keeps one GPU's stored state up to date without queueing a write per knob change: at most one write in
 * flight, and only the newest record waits behind it. A save that fails (a cluster electing a new leader, a
 * server restarting) is tried again, the newest record then, until it is stored or the saver is closed: the
 * stored state never stays behind the GPU's because an outage outlasted a fixed number of tries.
 */
export class StateSaver {
  private pending: GpuStateRecord | undefined;
  private inFlight: Promise<void> | undefined;
  private closing = false;
  private wake: (() => void) | undefined;
  writes = 0;
  conflicts = 0;
  /** Saves that failed and were tried again. */
  failures = 0;

  constructor(private readonly store: GpuStateStore, private readonly log: (line: string) => void) {}

  schedule(record: GpuStateRecord): void {
    this.pending = record;
    if (!this.closing) this.inFlight ??= this.drain();
  }

  /** Resolves when what was scheduled so far is written. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  /**
   * At shutdown: what is pending is saved if the store takes it within `withinMs`; after that the saver stops
   * trying and says which GPU's newest state was not stored.
   */
  async close(withinMs = CLOSE_MS): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => { timer = setTimeout(r, withinMs); });
    try {
      await Promise.race([this.flush(), late]);
    } finally {
      clearTimeout(timer);
    }
    this.closing = true;
    this.wake?.();
    await this.flush();
  }

  private async drain(): Promise<void> {
    let failed = 0;
    try {
      while (this.pending) {
        const record = this.pending;
        this.pending = undefined;
        try {
          await this.store.save(record);
          this.writes++;
          if (failed > 0) this.log(`state: saved ${record.host}/${record.gpu} to KV ${STATE_BUCKET} after ${failed} failed tries`);
          failed = 0;
        } catch (err) {
          if (err instanceof StateConflictError) {
            this.conflicts++;
            // Say so; the next save starts from the revision now stored (this runner's newest knobs win).
            this.log(`state: ${err.message}`);
            continue;
          }
          this.failures++;
          const waitMs = Math.min(RETRY_MAX_MS, RETRY_MS * 2 ** failed);
          // The first failure of a run of them is said; the rest are counted (`failures`) until one succeeds.
          if (failed++ === 0) this.log(`state: cannot save ${record.host}/${record.gpu} to KV ${STATE_BUCKET}: ${(err as Error).message}; trying again until it is stored`);
          this.pending ??= record;
          if (this.closing) break;
          await new Promise<void>((r) => { const t = setTimeout(r, waitMs); this.wake = () => { clearTimeout(t); r(); }; });
          this.wake = undefined;
          if (this.closing) break;
        }
      }
      if (this.pending) this.log(`state: ${this.pending.host}/${this.pending.gpu}'s newest state was not saved to KV ${STATE_BUCKET} before shutdown (the store still holds an older one)`);
    } finally {
      this.inFlight = undefined;
    }
  }
}
