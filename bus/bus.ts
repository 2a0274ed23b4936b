import { randomUUID } from 'node:crypto';
import { context as otelContext, isSpanContextValid, trace, type Context } from '@opentelemetry/api';
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  SCHEMA_VERSION, knownFieldsValidatorFor, subjects, typeForSubject, validatorFor,
  type CommandReply, type MessageOf, type MessageType,
} from '../schemas/index.ts';
import { injectTraceContext, withHandleSpan } from '../observability/index.ts';
import { Admission, DEFAULT_MAX_PAYLOAD_BYTES, type Received, type RejectReason } from './admission.ts';
import { decode, encode } from './codec.ts';
import { authFromEnv, BusAuthError, connectionAuth, describeAuth, hasAuth, type BusAuth } from './auth/index.ts';
import { BusUnavailableError, CommandError, NoRespondersError, OutgoingSchemaError } from './errors.ts';
import { startLocalNatsServer, type LocalNatsServer } from './server.ts';

// The incoming edge (checks, rejection events) is admission.ts; these stay importable from here.
export { DEFAULT_MAX_PAYLOAD_BYTES, type Received, type RejectReason } from './admission.ts';

export interface BusOptions {
  /** NATS server URL; default NATS_URL, else a private nats-server (the embedded default). */
  url?: string;
  /** Connection name shown by the server. */
  name: string;
  /** Host id that rejected-message events are published under. */
  host: string;
  maxPayloadBytes?: number;
  /** Credentials and TLS; default from NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN, NATS_TLS_*. */
  auth?: BusAuth;
  /** How long the first connection may take (default 5000 ms). */
  connectTimeoutMs?: number;
  /**
   * Prefix of every reply subject of this connection (our commands' replies, JetStream and KV requests):
   * default NATS_INBOX_PREFIX, else `_INBOX.<host>`. A server can then let each user subscribe to its own
   * replies only (`_INBOX.host-a.>`), so no host reads the replies meant for another (deploy/nats).
   */
  inboxPrefix?: string;
}

/** The reply-subject prefix a connection uses (see BusOptions.inboxPrefix); refused when it is no subject prefix. */
export function inboxPrefixFor(options: Pick<BusOptions, 'inboxPrefix' | 'host'>, env: NodeJS.ProcessEnv = process.env): string {
  const prefix = options.inboxPrefix ?? env.NATS_INBOX_PREFIX ?? `_INBOX.${options.host}`;
  if (!/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/.test(prefix)) {
    throw new BusAuthError(`inbox prefix ${JSON.stringify(prefix)} must be subject tokens (letters, digits, _ $ -) separated by dots, no wildcards`);
  }
  return prefix;
}

export interface BusStats {
  published: number;
  received: number;
  rejected: number;
  rejectedByReason: Record<RejectReason, number>;
  handlerErrors: number;
  /** Times the connection came back after losing its server. */
  reconnects: number;
  /** Events held while the server was unreachable and sent when it came back. */
  eventsHeld: number;
  /** Events dropped because the outage outlasted the hold queue (oldest first). */
  eventsDropped: number;
}

/** A command without the fields the bus fills in (version, id, deadline). */
export type CommandBody<T extends MessageType> = Omit<MessageOf<T>, 'v' | 'id' | 'deadlineUnixMs'> & {
  id?: string;
  deadlineUnixMs?: number;
};

export interface CommandOutcome {
  ok: boolean;
  error?: string;
  state?: Record<string, unknown>;
}

/** A command waiting for its reply: the promise's own settle functions and its timeout (cleared on either). */
interface PendingReply {
  resolve: (m: Msg) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const IDEMPOTENCY_CACHE = 4096;
/** Events kept through a server outage (about a minute of a 16-GPU host's events). */
const MAX_HELD_EVENTS = 10_000;
const EVENTS_PREFIX = subjects.allEvents().slice(0, -1);

/**
 * The NATS edge: msgpack codec, schema validation of everything received, trace context in headers,
 * commands as request/reply with deadline and idempotency key. A bad message is dropped, counted and
 * reported as a `bus.rejected` event; it never reaches a handler.
 */
export class Bus {
  readonly stats: BusStats = {
    published: 0, received: 0, rejected: 0, handlerErrors: 0, reconnects: 0, eventsHeld: 0, eventsDropped: 0,
    rejectedByReason: { oversize: 0, decode: 0, schema: 0, 'unknown-subject': 0, version: 0 },
  };
  /** The incoming edge: checks every message received, reports the rejected ones (admission.ts). */
  private readonly admission: Admission;
  /** Prefix of this connection's reply subjects (BusOptions.inboxPrefix). */
  readonly inboxPrefix: string;
  private readonly subs: Subscription[] = [];
  private closed = false;
  /** performance.now() when the connection was made: how fast a restarted runner is back is measured from it. */
  readonly connectedAtMs = performance.now();
  private readonly reconnectListeners: Array<() => void> = [];
  /** False between a disconnect and the reconnect: the client would silently discard what is published then. */
  private connected = true;
  private readonly held: Array<{ subject: string; bytes: Uint8Array; headers: ReturnType<Bus['traceHeaders']> }> = [];
  /**
   * Replies to our commands arrive on one subscription (`<inbox>.<n>`) and are matched to their request
   * here, without the client's per-request bookkeeping.
   */
  private replyInbox: string | undefined;
  private replySeq = 0;
  private readonly pendingReplies = new Map<string, PendingReply>();
  onError: (err: unknown, where: string) => void = (err, where) => {
    console.error(`gpucolo bus: ${where}: ${(err as Error)?.message ?? err}`);
  };

  private constructor(
    readonly nc: NatsConnection,
    readonly url: string,
    private readonly options: BusOptions,
    private readonly server?: LocalNatsServer,
  ) {
    this.admission = new Admission({
      host: options.host,
      maxPayloadBytes: options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      stats: this.stats,
      closed: () => this.closed,
      publish: (subject, event) => this.publish(subject, event),
      onError: (err, where) => this.onError(err, where),
    });
    this.inboxPrefix = inboxPrefixFor(options);
    void this.watchStatus();
  }

  /** Calls `listener` each time the connection is back after an outage (subscriptions are restored by then). */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.connected = false;
      if (s.type !== 'reconnect') continue;
      this.connected = true;
      this.stats.reconnects++;
      // Events from the outage go out first, in order, so the stream holds them for replay.
      for (const m of this.held.splice(0)) this.nc.publish(m.subject, m.bytes, m.headers ? { headers: m.headers } : undefined);
      for (const l of this.reconnectListeners) this.runHandler(l, undefined, 'reconnect listener');
    }
  }

  /** Connects to NATS_URL / `url`, or starts the embedded default (a private nats-server). */
  static async connect(options: BusOptions): Promise<Bus> {
    const url = options.url ?? process.env.NATS_URL;
    // The embedded default is private to this process on loopback: it takes no credentials.
    const auth = url ? options.auth ?? authFromEnv() : {};
    const authOptions = connectionAuth(auth);
    const inboxPrefix = inboxPrefixFor(options);
    const server = url ? undefined : await startLocalNatsServer();
    const target = url ?? server!.url;
    try {
      // NATS_URL may list several servers of a cluster, comma-separated (as the NATS tools read it).
      const servers = target.split(',').map((u) => u.trim()).filter(Boolean);
      const nc = await connect({ servers, name: options.name, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: options.connectTimeoutMs ?? 5000, inboxPrefix, ...authOptions });
      return new Bus(nc, target, options, server);
    } catch (err) {
      await server?.stop();
      const as = hasAuth(auth) ? ` (${describeAuth(auth)})` : '';
      // A server that refuses the TLS handshake (no or untrusted client certificate) just closes: it reads as a timeout.
      const hint = authOptions.tls && /timeout/i.test((err as Error).message) ? '; with TLS this is often a refused handshake: check the CA and the client certificate the server expects' : '';
      throw new BusUnavailableError(`cannot connect to NATS at ${target}${as}: ${(err as Error).message}${hint}`, { cause: err });
    }
  }

  /** True when this bus started its own nats-server. */
  get embedded(): boolean {
    return this.server !== undefined;
  }

  /** Validates and publishes a message; the active (or given) trace context rides in the headers. */
  publish<T extends MessageType>(subject: string, message: MessageOf<T>, ctx?: Context): void {
    if (this.closed) return;
    const bytes = this.encodeChecked(subject, message);
    const headers = this.traceHeaders(ctx);
    if (!this.connected && subject.startsWith(EVENTS_PREFIX)) {
      // Events are for replay: hold them until the server is back. Telemetry would be stale by then: dropped.
      this.held.push({ subject, bytes, headers });
      this.stats.eventsHeld++;
      if (this.held.length > MAX_HELD_EVENTS) { this.held.shift(); this.stats.eventsDropped++; }
    } else {
      this.nc.publish(subject, bytes, { headers });
    }
    this.stats.published++;
  }

  /** Subscribes to a pattern; the handler sees only valid messages of the subject's type. */
  subscribe<T extends MessageType>(pattern: string, handler: (r: Received<MessageOf<T>>) => void | Promise<void>): Subscription {
    const sub = this.nc.subscribe(pattern, {
      callback: (err, msg) => {
        if (err) return this.onError(err, `subscription ${pattern}`);
        const r = this.admit(msg);
        if (!r) return;
        this.runHandler(handler as (r: Received<unknown>) => void | Promise<void>, r, 'handler', msg.subject);
      },
    });
    this.subs.push(sub);
    return sub;
  }

  /**
   * Serves commands on a pattern: refuses commands past their deadline, answers a repeated id with the
   * first reply (marked duplicate) without running the handler again.
   */
  serve<T extends MessageType>(
    pattern: string,
    handler: (r: Received<MessageOf<T>>) => Promise<CommandOutcome> | CommandOutcome,
  ): Subscription {
    const seen = new Map<string, Promise<CommandReply>>();
    return this.subscribe<T>(pattern, (r) => {
      const msg = r.message as MessageOf<T> & { id: string; deadlineUnixMs: number };
      const raw = (r as Received<unknown> & { reply?: string }).reply;
      const prior = seen.get(msg.id);
      const replyP: Promise<CommandReply> = prior
        ? prior.then((rep) => Object.assign({}, rep, { duplicate: true }))
        : (async () => {
            if (Date.now() > msg.deadlineUnixMs) {
              return { v: SCHEMA_VERSION, type: 'command.reply', id: msg.id, ok: false, error: 'deadline passed before the command was handled' } as CommandReply;
            }
            try {
              // The handling is a child of the sender's span (W3C context from the headers), across processes.
              const out = await withHandleSpan(r.subject, (msg as { type: string }).type, msg.id, r.traceContext, () => handler(r));
              const rep: CommandReply = { v: SCHEMA_VERSION, type: 'command.reply', id: msg.id, ok: out.ok };
              if (out.error !== undefined) rep.error = out.error;
              if (out.state !== undefined) rep.state = out.state;
              return rep;
            } catch (err) {
              return { v: SCHEMA_VERSION, type: 'command.reply', id: msg.id, ok: false, error: (err as Error).message } as CommandReply;
            }
          })();
      if (!prior) {
        seen.set(msg.id, replyP);
        if (seen.size > IDEMPOTENCY_CACHE) seen.delete(seen.keys().next().value as string);
      }
      return replyP.then((rep) => {
        if (raw && !this.closed) this.nc.publish(raw, encode(rep));
      });
    });
  }

  /** Sends a command and waits for its reply until the deadline; fills in version, id and deadline. */
  async request<T extends MessageType>(subject: string, body: CommandBody<T>, options: { timeoutMs?: number; ctx?: Context } = {}): Promise<CommandReply> {
    const timeoutMs = options.timeoutMs ?? 2000;
    // A copy given its fields one by one, not a spread: a spread clone given new keys outlives V8's young
    // generation (Node 20), which makes every scavenge a long pause in the control round trip's tail. The keys
    // and their order are Object.assign({}, body, { v, id, deadlineUnixMs })'s, without that last object.
    const command = Object.assign({}, body) as Record<string, unknown>;
    command.v = SCHEMA_VERSION;
    command.id = body.id ?? randomUUID();
    command.deadlineUnixMs = body.deadlineUnixMs ?? Date.now() + timeoutMs;
    const bytes = this.encodeChecked(subject, command as unknown as MessageOf<T>);
    let msg: Msg;
    try {
      msg = await this.sendForReply(subject, bytes, timeoutMs, this.traceHeaders(options.ctx));
    } catch (err) {
      throw new CommandError(`command to ${subject} got no reply within ${timeoutMs} ms: ${(err as Error).message}`, true, { cause: err });
    }
    if (msg.headers?.code === 503) throw new NoRespondersError(subject);
    this.stats.published++;
    let reply: unknown;
    try {
      reply = decode(msg.data);
    } catch (err) {
      throw new CommandError(`reply from ${subject} is not msgpack`, false, { cause: err });
    }
    if (!validatorFor('command.reply').Check(reply)) throw new CommandError(`reply from ${subject} fails the command.reply schema`, false);
    return reply as CommandReply;
  }

  private sendForReply(subject: string, bytes: Uint8Array, timeoutMs: number, headers: ReturnType<Bus['traceHeaders']>): Promise<Msg> {
    if (this.closed) return Promise.reject(new Error('bus closed'));
    if (!this.replyInbox) {
      const inbox = createInbox(this.inboxPrefix);
      this.nc.subscribe(`${inbox}.*`, {
        callback: (err, msg) => {
          if (err) return;
          const p = this.pendingReplies.get(msg.subject);
          if (!p) return; // late: its request timed out
          this.pendingReplies.delete(msg.subject);
          clearTimeout(p.timer);
          p.resolve(msg);
        },
      });
      this.replyInbox = inbox;
    }
    const reply = `${this.replyInbox}.${++this.replySeq}`;
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingReplies.delete(reply);
        reject(new Error('timeout'));
      }, timeoutMs);
      this.pendingReplies.set(reply, { resolve, reject, timer });
      this.nc.publish(subject, bytes, headers ? { reply, headers } : { reply });
    });
  }

  /**
   * Sends a command until it is answered or its deadline passes, every try with the same idempotency key
   * and deadline: a command whose request or reply was lost (a NATS restart, a reconnect) is sent again
   * and answered once; the receiver never applies it twice. Errors that retrying cannot fix are thrown at once.
   */
  async requestWithRetry<T extends MessageType>(
    subject: string, body: CommandBody<T>, options: { deadlineMs?: number; tryTimeoutMs?: number; ctx?: Context } = {},
  ): Promise<CommandReply & { attempts: number }> {
    const id = body.id ?? randomUUID();
    const deadlineUnixMs = body.deadlineUnixMs ?? Date.now() + (options.deadlineMs ?? 10_000);
    const tryTimeoutMs = options.tryTimeoutMs ?? 1000;
    let attempts = 0;
    let last: unknown;
    while (Date.now() < deadlineUnixMs && !this.closed) {
      attempts++;
      const leftMs = Math.max(1, deadlineUnixMs - Date.now());
      try {
        const reply = await this.request<T>(subject, Object.assign({}, body, { id, deadlineUnixMs }), { timeoutMs: Math.min(tryTimeoutMs, leftMs), ...(options.ctx ? { ctx: options.ctx } : {}) });
        return Object.assign({}, reply, { attempts });
      } catch (err) {
        if (!(err instanceof CommandError) || !err.retryable) throw err;
        last = err;
        await new Promise((r) => setTimeout(r, Math.min(100, Math.max(0, deadlineUnixMs - Date.now()))));
      }
    }
    throw new CommandError(`command ${id} to ${subject} got no reply in ${attempts} tries before its deadline: ${(last as Error)?.message ?? 'bus closed'}`, true, { cause: last });
  }

  /** Drains subscriptions, closes the connection and stops the embedded server; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.admission.stop();
    for (const p of this.pendingReplies.values()) { clearTimeout(p.timer); p.reject(new Error('bus closed')); }
    this.pendingReplies.clear();
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => undefined);
    }
    await this.server?.stop();
  }

  private encodeChecked(subject: string, message: unknown): Uint8Array {
    const type = typeForSubject(subject);
    if (!type) throw new OutgoingSchemaError(`subject ${subject} is outside the gpucolo subject tree`);
    // What we send carries only the fields this version defines (a misspelt field fails here, not downstream).
    const check = knownFieldsValidatorFor(type);
    if (!check.Check(message)) {
      const first = check.Errors(message).First();
      throw new OutgoingSchemaError(`outgoing ${type} on ${subject} fails its schema: ${first?.path ?? ''} ${first?.message ?? ''}`);
    }
    return encode(message);
  }

  private traceHeaders(ctx?: Context) {
    const c = ctx ?? otelContext.active();
    // No span to carry (telemetry off, or no active span): no headers, without building a carrier per message
    // (the W3C propagator injects nothing for an invalid or absent span context either).
    const sc = trace.getSpanContext(c);
    if (!sc || !isSpanContextValid(sc)) return undefined;
    const carrier = injectTraceContext(c);
    const keys = Object.keys(carrier);
    if (keys.length === 0) return undefined;
    const h = natsHeaders();
    for (const k of keys) h.set(k, carrier[k]!);
    return h;
  }

  private admit(msg: Msg): (Received<unknown> & { reply?: string }) | undefined {
    // One object with the reply subject in it (not a copy of admitMessage's with one more key: see request()).
    return this.admission.admitWithReply(msg.subject, msg.data, msg.headers, msg.reply);
  }

  /** The edge: size, msgpack, subject, version and schema checks. Returns undefined when rejected. */
  admitMessage(subject: string, data: Uint8Array, headers?: MsgHdrs): Received<unknown> | undefined {
    return this.admission.admitMessage(subject, data, headers);
  }

  /**
   * Runs fn(arg), counting and reporting what it throws or rejects with, as `where` (followed by `subject` when one
   * is given: the label is built only on an error, not per message).
   */
  private runHandler<A>(fn: (arg: A) => void | Promise<void>, arg: A, where: string, subject?: string): void {
    try {
      const p = fn(arg);
      if (p && typeof (p as Promise<void>).catch === 'function') (p as Promise<void>).catch((err) => this.handlerFailed(err, where, subject));
    } catch (err) {
      // A daemon never dies of someone else's bytes, nor of one handler's bug.
      this.handlerFailed(err, where, subject);
    }
  }

  private handlerFailed(err: unknown, where: string, subject: string | undefined): void {
    this.stats.handlerErrors++;
    this.onError(err, subject === undefined ? where : `${where} ${subject}`);
  }
}
