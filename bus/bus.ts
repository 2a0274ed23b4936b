import { randomUUID } from 'node:crypto';
import { context as otelContext, type Context } from '@opentelemetry/api';
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import {
  SCHEMA_VERSION, subjects, typeForSubject, validatorFor,
  type BusRejectedEvent, type CommandReply, type MessageOf, type MessageType,
} from '../schemas/index.ts';
import { extractTraceContext, injectTraceContext } from '../observability/tracing.ts';
import { recordRejected } from '../observability/metrics.ts';
import { withHandleSpan } from '../observability/spans.ts';
import { decode, encode } from './codec.ts';
import { BusUnavailableError, CommandError, OutgoingSchemaError } from './errors.ts';
import { startLocalNatsServer, type LocalNatsServer } from './server.ts';

/** Default cap on an incoming payload; larger messages are dropped at the edge. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

export type RejectReason = BusRejectedEvent['reason'];

export interface BusOptions {
  /** NATS server URL; default NATS_URL, else a private nats-server (the embedded default). */
  url?: string;
  /** Connection name shown by the server. */
  name: string;
  /** Host id that rejected-message events are published under. */
  host: string;
  maxPayloadBytes?: number;
}

/** A message that passed the edge, with the trace context it carried. */
export interface Received<T> {
  subject: string;
  message: T;
  traceContext: Context;
}

export interface BusStats {
  published: number;
  received: number;
  rejected: number;
  rejectedByReason: Record<RejectReason, number>;
  handlerErrors: number;
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

const IDEMPOTENCY_CACHE = 4096;
const REJECT_EVENTS_PER_SEC = 20;

/**
 * The NATS edge: msgpack codec, schema validation of everything received, trace context in headers,
 * commands as request/reply with deadline and idempotency key. A bad message is dropped, counted and
 * reported as a `bus.rejected` event; it never reaches a handler.
 */
export class Bus {
  readonly stats: BusStats = {
    published: 0, received: 0, rejected: 0, handlerErrors: 0,
    rejectedByReason: { oversize: 0, decode: 0, schema: 0, 'unknown-subject': 0, version: 0 },
  };
  private readonly maxPayloadBytes: number;
  private readonly subs: Subscription[] = [];
  private rejectWindowStartMs = 0;
  private rejectEventsInWindow = 0;
  private closed = false;
  onError: (err: unknown, where: string) => void = (err, where) => {
    console.error(`gpucolo bus: ${where}: ${(err as Error)?.message ?? err}`);
  };

  private constructor(
    readonly nc: NatsConnection,
    readonly url: string,
    private readonly options: BusOptions,
    private readonly server?: LocalNatsServer,
  ) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  }

  /** Connects to NATS_URL / `url`, or starts the embedded default (a private nats-server). */
  static async connect(options: BusOptions): Promise<Bus> {
    const url = options.url ?? process.env.NATS_URL;
    const server = url ? undefined : await startLocalNatsServer();
    const target = url ?? server!.url;
    try {
      const nc = await connect({ servers: target, name: options.name, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      return new Bus(nc, target, options, server);
    } catch (err) {
      await server?.stop();
      throw new BusUnavailableError(`cannot connect to NATS at ${target}: ${(err as Error).message}`, { cause: err });
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
    this.nc.publish(subject, bytes, { headers: this.traceHeaders(ctx) });
    this.stats.published++;
  }

  /** Subscribes to a pattern; the handler sees only valid messages of the subject's type. */
  subscribe<T extends MessageType>(pattern: string, handler: (r: Received<MessageOf<T>>) => void | Promise<void>): Subscription {
    const sub = this.nc.subscribe(pattern, {
      callback: (err, msg) => {
        if (err) return this.onError(err, `subscription ${pattern}`);
        const r = this.admit(msg);
        if (!r) return;
        this.runHandler(() => handler(r as Received<MessageOf<T>>), `handler ${msg.subject}`);
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
        ? prior.then((rep) => ({ ...rep, duplicate: true }))
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
    const command = {
      ...body,
      v: SCHEMA_VERSION,
      id: body.id ?? randomUUID(),
      deadlineUnixMs: body.deadlineUnixMs ?? Date.now() + timeoutMs,
    } as unknown as MessageOf<T>;
    const bytes = this.encodeChecked(subject, command);
    let msg: Msg;
    try {
      msg = await this.nc.request(subject, bytes, { timeout: timeoutMs, headers: this.traceHeaders(options.ctx) });
    } catch (err) {
      throw new CommandError(`command to ${subject} got no reply within ${timeoutMs} ms: ${(err as Error).message}`, true, { cause: err });
    }
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

  /** Drains subscriptions, closes the connection and stops the embedded server; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
    const check = validatorFor(type);
    if (!check.Check(message)) {
      const first = check.Errors(message).First();
      throw new OutgoingSchemaError(`outgoing ${type} on ${subject} fails its schema: ${first?.path ?? ''} ${first?.message ?? ''}`);
    }
    return encode(message);
  }

  private traceHeaders(ctx?: Context) {
    const carrier = injectTraceContext(ctx ?? otelContext.active());
    const keys = Object.keys(carrier);
    if (keys.length === 0) return undefined;
    const h = natsHeaders();
    for (const k of keys) h.set(k, carrier[k]!);
    return h;
  }

  private admit(msg: Msg): (Received<unknown> & { reply?: string }) | undefined {
    const r = this.admitMessage(msg.subject, msg.data, msg.headers);
    return r && { ...r, reply: msg.reply };
  }

  /** The edge: size, msgpack, subject, version and schema checks. Returns undefined when rejected. */
  admitMessage(subject: string, data: Uint8Array, headers?: MsgHdrs): Received<unknown> | undefined {
    const bytes = data.length;
    if (bytes > this.maxPayloadBytes) return this.reject(subject, 'oversize', `${bytes} bytes > limit ${this.maxPayloadBytes}`, bytes);
    const type = typeForSubject(subject);
    if (!type) return this.reject(subject, 'unknown-subject', 'no message type is defined for this subject', bytes);
    let message: unknown;
    try {
      message = decode(data);
    } catch (err) {
      return this.reject(subject, 'decode', `not msgpack: ${(err as Error).message}`.slice(0, 200), bytes);
    }
    const v = (message as { v?: unknown } | null)?.v;
    if (typeof message === 'object' && message !== null && v !== SCHEMA_VERSION) {
      return this.reject(subject, 'version', `schema version ${JSON.stringify(v)}, expected ${SCHEMA_VERSION}`, bytes);
    }
    const check = validatorFor(type);
    if (!check.Check(message)) {
      const first = check.Errors(message).First();
      return this.reject(subject, 'schema', `${type}: ${first?.path || '/'} ${first?.message ?? 'invalid'}`.slice(0, 200), bytes);
    }
    this.stats.received++;
    const traceContext = extractTraceContext((k) => headers?.get(k) || undefined);
    return { subject, message, traceContext };
  }

  private reject(subject: string, reason: RejectReason, detail: string, bytes: number): undefined {
    this.stats.rejected++;
    this.stats.rejectedByReason[reason]++;
    recordRejected(this.options.host, reason);
    // Never report a rejection of a rejection event (no storms), and cap the event rate.
    if (subject.endsWith('.rejected') || this.closed) return undefined;
    const now = Date.now();
    if (now - this.rejectWindowStartMs >= 1000) {
      this.rejectWindowStartMs = now;
      this.rejectEventsInWindow = 0;
    }
    if (this.rejectEventsInWindow++ >= REJECT_EVENTS_PER_SEC) return undefined;
    const event: BusRejectedEvent = {
      v: SCHEMA_VERSION, type: 'bus.rejected', host: this.options.host, unixMs: now,
      subject: subject.slice(0, 256), reason, detail, bytes, rejectedTotal: this.stats.rejected,
    };
    try {
      this.publish(subjects.busRejected(this.options.host), event);
    } catch (err) {
      this.onError(err, 'publishing a rejection event');
    }
    return undefined;
  }

  private runHandler(fn: () => void | Promise<void>, where: string): void {
    try {
      const p = fn();
      if (p && typeof (p as Promise<void>).catch === 'function') {
        (p as Promise<void>).catch((err) => { this.stats.handlerErrors++; this.onError(err, where); });
      }
    } catch (err) {
      // A daemon never dies of someone else's bytes, nor of one handler's bug.
      this.stats.handlerErrors++;
      this.onError(err, where);
    }
  }
}
