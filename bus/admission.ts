import { context as otelContext, type Context } from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/nats-core';
import {
  SCHEMA_VERSION, isPublishedEvent, knownFieldsOf, knownFieldsValidatorFor, subjects, typeForSubject, validatorFor,
  type BusRejectedEvent,
} from '../schemas/index.ts';
import { extractTraceContext, recordRejected } from '../observability/index.ts';
import type { BusStats } from './bus.ts';
import { decode } from './codec.ts';

/** Default cap on an incoming payload; larger messages are dropped at the edge. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

export type RejectReason = BusRejectedEvent['reason'];

/** A message that passed the edge, with the trace context it carried. */
export interface Received<T> {
  subject: string;
  message: T;
  traceContext: Context;
}

const REJECT_EVENTS_PER_SEC = 20;

/** The trace context a message carried; no headers, none to read: the active one (what the W3C extraction returns then too). */
function traceContextOf(headers: MsgHdrs | undefined): Context {
  return headers ? extractTraceContext((k) => headers.get(k) || undefined) : otelContext.active();
}

/** What check() returns for a message it rejected. */
const REJECTED: unique symbol = Symbol('rejected');

/** What the admission needs from its bus (callbacks, so a later `bus.onError = ...` still counts). */
export interface AdmissionOptions {
  /** Host id that rejected-message events are published under. */
  host: string;
  maxPayloadBytes: number;
  /** The bus's counters: received, rejected and rejectedByReason are counted here. */
  stats: BusStats;
  closed: () => boolean;
  publish: (subject: string, event: BusRejectedEvent) => void;
  onError: (err: unknown, where: string) => void;
}

/**
 * The bus's incoming edge: size, msgpack, subject, version and schema checks on every message received.
 * A bad message is dropped, counted and reported as a `bus.rejected` event (at most REJECT_EVENTS_PER_SEC
 * a second, the rest summed up in one summary event); it never reaches a handler.
 */
export class Admission {
  private rejectWindowStartMs = 0;
  private rejectEventsInWindow = 0;
  /** Rejections past the per-second event cap, reported together by one summary event. */
  private rejectsUnreported = 0;
  private rejectSummaryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: AdmissionOptions) {}

  /** Stops the pending summary event (the bus is closing). */
  stop(): void {
    clearTimeout(this.rejectSummaryTimer);
  }

  /** The edge: size, msgpack, subject, version and schema checks. Returns undefined when rejected. */
  admitMessage(subject: string, data: Uint8Array, headers?: MsgHdrs): Received<unknown> | undefined {
    const message = this.check(subject, data);
    if (message === REJECTED) return undefined;
    return { subject, message, traceContext: traceContextOf(headers) };
  }

  /** admitMessage, with the message's reply subject in the one object it returns (the bus's subscriptions). */
  admitWithReply(subject: string, data: Uint8Array, headers: MsgHdrs | undefined, reply: string | undefined): (Received<unknown> & { reply?: string }) | undefined {
    const message = this.check(subject, data);
    if (message === REJECTED) return undefined;
    return { subject, message, traceContext: traceContextOf(headers), reply };
  }

  /** The checks: the message (known fields only), counted as received, or REJECTED (counted and reported). */
  private check(subject: string, data: Uint8Array): unknown {
    const bytes = data.length;
    if (bytes > this.o.maxPayloadBytes) return this.reject(subject, 'oversize', `${bytes} bytes > limit ${this.o.maxPayloadBytes}`, bytes);
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
    // Fields this version knows only, the fast path. An event from a newer v1 producer may carry more
    // (published events are open to additions): valid, and its unknown fields never reach an actor.
    if (!knownFieldsValidatorFor(type).Check(message)) {
      const check = validatorFor(type);
      if (!isPublishedEvent(type) || !check.Check(message)) {
        const first = check.Errors(message).First();
        return this.reject(subject, 'schema', `${type}: ${first?.path || '/'} ${first?.message ?? 'invalid'}`.slice(0, 200), bytes);
      }
      message = knownFieldsOf(type, message);
    }
    this.o.stats.received++;
    return message;
  }

  private reject(subject: string, reason: RejectReason, detail: string, bytes: number): typeof REJECTED {
    const stats = this.o.stats;
    stats.rejected++;
    stats.rejectedByReason[reason]++;
    recordRejected(this.o.host, reason);
    // Never report a rejection of a rejection event (no storms), and cap the event rate.
    if (subject.endsWith('.rejected') || this.o.closed()) return REJECTED;
    const now = Date.now();
    if (now - this.rejectWindowStartMs >= 1000) {
      this.rejectWindowStartMs = now;
      this.rejectEventsInWindow = 0;
    }
    if (this.rejectEventsInWindow++ >= REJECT_EVENTS_PER_SEC) {
      // Over the cap: no event each, but one summary when the window ends, so the last event a
      // watcher sees always carries the true total.
      this.rejectsUnreported++;
      this.rejectSummaryTimer ??= setTimeout(() => {
        this.rejectSummaryTimer = undefined;
        const n = this.rejectsUnreported;
        this.rejectsUnreported = 0;
        this.publishRejected(subject, reason, `${n} more rejected message(s) in the last second, reported together; latest: ${detail}`.slice(0, 300), bytes, Date.now());
      }, Math.max(1, this.rejectWindowStartMs + 1000 - now));
      this.rejectSummaryTimer.unref?.();
      return REJECTED;
    }
    this.publishRejected(subject, reason, detail, bytes, now);
    return REJECTED;
  }

  private publishRejected(subject: string, reason: RejectReason, detail: string, bytes: number, unixMs: number): void {
    if (this.o.closed()) return;
    const event: BusRejectedEvent = {
      v: SCHEMA_VERSION, type: 'bus.rejected', host: this.o.host, unixMs,
      subject: subject.slice(0, 256), reason, detail, bytes, rejectedTotal: this.o.stats.rejected,
    };
    try {
      this.o.publish(subjects.busRejected(this.o.host), event);
    } catch (err) {
      this.o.onError(err, 'publishing a rejection event');
    }
  }
}
