import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { FleetLeaseValue, SCHEMA_VERSION } from '../../schemas/index.ts';

/** The KV bucket and key of the fleet leader's lease. */
export const FLEET_LEASE_BUCKET = 'COLO_FLEET';
export const FLEET_LEASE_KEY = 'leader';

const LeaseValue = TypeCompiler.Compile(FleetLeaseValue);

export interface LeaseState {
  held: boolean;
  /** KV revision of the lease entry as last seen (0: none). */
  revision: number;
  /** The holder as last seen, if any. */
  holder?: string;
}

/**
 * A leader lease on JetStream KV by revision compare-and-set (works on nats-server 2.9: no per-message
 * TTL needed). The holder rewrites the entry every tick with `update(key, value, revision)`; a standby
 * takes over, with the same compare-and-set, once the entry's revision has not moved for `ttlMs` by its
 * own clock, so clocks need not agree across machines. Exactly one CAS wins a race. A holder that cannot
 * renew for `ttlMs` counts itself out before any standby can count it gone.
 */
export class FleetLease {
  private kv?: KV;
  private seenRevision = 0;
  private seenChangedAtMs = 0;
  private lastRenewedAtMs = Number.NEGATIVE_INFINITY;
  private state: LeaseState = { held: false, revision: 0 };
  /** Malformed lease values seen (dropped, counted; a standby then waits one ttl and overwrites). */
  malformed = 0;

  constructor(
    private readonly nc: NatsConnection,
    readonly fleetId: string,
    readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly bucket = FLEET_LEASE_BUCKET,
  ) {}

  /** One lease step: renew, or take over an absent or expired lease. Never throws. */
  async tick(): Promise<LeaseState> {
    try {
      this.kv ??= await new Kvm(this.nc).create(this.bucket, { history: 1 });
      const kv = this.kv;
      const value = new TextEncoder().encode(JSON.stringify({ v: SCHEMA_VERSION, fleetId: this.fleetId, renewedUnixMs: Date.now() } satisfies FleetLeaseValue));
      const e = await kv.get(FLEET_LEASE_KEY);
      const now = this.now();
      if (!e || e.operation !== 'PUT') {
        const revision = await kv.create(FLEET_LEASE_KEY, value);
        return this.held(revision, now);
      }
      let holder: string | undefined;
      try {
        const parsed: unknown = e.json();
        if (LeaseValue.Check(parsed)) holder = parsed.fleetId;
        else this.malformed++;
      } catch {
        this.malformed++;
      }
      if (e.revision !== this.seenRevision) {
        this.seenRevision = e.revision;
        this.seenChangedAtMs = now;
      }
      if (holder === this.fleetId || now - this.seenChangedAtMs >= this.ttlMs) {
        const revision = await kv.update(FLEET_LEASE_KEY, value, e.revision);
        return this.held(revision, now);
      }
      this.state = { held: false, revision: e.revision, ...(holder ? { holder } : {}) };
      return this.state;
    } catch (err) {
      // A lost compare-and-set: someone else wrote the lease, so it is theirs. An unreachable server:
      // held only while the last renewal is within the ttl, less a margin, so the old holder stops
      // before a standby can start.
      const lostRace = /wrong last sequence|key exists/i.test((err as Error)?.message ?? '');
      if (!lostRace && this.state.held && this.now() - this.lastRenewedAtMs < this.ttlMs * 0.8) return this.state;
      this.state = { held: false, revision: this.state.revision };
      return this.state;
    }
  }

  /** Gives the lease up at once (a clean stop): a standby takes over at its next tick. */
  async release(): Promise<void> {
    if (!this.state.held || !this.kv) return;
    this.state = { held: false, revision: this.state.revision };
    await this.kv.delete(FLEET_LEASE_KEY, { previousSeq: this.state.revision }).catch(() => undefined);
  }

  private held(revision: number, now: number): LeaseState {
    this.seenRevision = revision;
    this.seenChangedAtMs = now;
    this.lastRenewedAtMs = now;
    this.state = { held: true, revision, holder: this.fleetId };
    return this.state;
  }
}
