import { closeSync, openSync, readFileSync, write } from 'node:fs';
import type { Attributes, HrTime } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/** Version of the trace file line format (`v` of every line). */
export const TRACE_FILE_VERSION = 1 as const;

export type AttrValue = string | number | boolean | string[] | number[] | boolean[];

/** One span as one JSON line of a trace file: plain data, times in Unix ms. */
export interface SpanRecord {
  v: typeof TRACE_FILE_VERSION;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OpenTelemetry SpanKind number (0 internal, 1 server, 2 client, 3 producer, 4 consumer). */
  kind: number;
  /** The resource's `service.name`: which process made the span. */
  service: string;
  /** The resource's `service.instance.id`: which host runner or fleet process (absent when unset). */
  instance?: string;
  startUnixMs: number;
  endUnixMs: number;
  attributes: Record<string, AttrValue>;
  events: { name: string; unixMs: number; attributes: Record<string, AttrValue> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, AttrValue> }[];
  /** 0 unset, 1 ok, 2 error. */
  status: { code: number; message?: string };
}

const hrMs = (t: HrTime): number => t[0] * 1000 + t[1] / 1e6;

function plain(attrs: Attributes | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined && v !== null) out[k] = v as AttrValue;
  return out;
}

/** Converts an SDK span to its trace file record. */
export function spanRecord(s: ReadableSpan): SpanRecord {
  const sc = s.spanContext();
  const r: SpanRecord = {
    v: TRACE_FILE_VERSION,
    traceId: sc.traceId,
    spanId: sc.spanId,
    name: s.name,
    kind: s.kind,
    service: String(s.resource.attributes['service.name'] ?? 'unknown'),
    startUnixMs: hrMs(s.startTime),
    endUnixMs: hrMs(s.endTime),
    attributes: plain(s.attributes),
    events: s.events.map((e) => ({ name: e.name, unixMs: hrMs(e.time), attributes: plain(e.attributes) })),
    links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: plain(l.attributes) })),
    status: s.status.message ? { code: s.status.code, message: s.status.message } : { code: s.status.code },
  };
  const instance = s.resource.attributes['service.instance.id'];
  if (instance !== undefined) r.instance = String(instance);
  if (s.parentSpanContext?.spanId) r.parentSpanId = s.parentSpanContext.spanId;
  return r;
}

/**
 * Writes spans as JSON lines, appending. The file is opened with O_APPEND and every export is one write of
 * whole lines, so several processes (a demo's host runners) may share one file without tearing lines.
 */
export class TraceFileExporter implements SpanExporter {
  private fd: number | undefined;
  private pending = 0;
  private idle: (() => void)[] = [];

  /** Opens (creates) `path` for appending; throws a clear error when it cannot. */
  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'a');
    } catch (err) {
      throw new Error(`cannot open trace file ${path} for appending: ${(err as Error).message}`, { cause: err });
    }
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.fd === undefined) return done({ code: ExportResultCode.FAILED, error: new Error('trace file is closed') });
    const text = spans.map((s) => JSON.stringify(spanRecord(s))).join('\n') + '\n';
    const buf = Buffer.from(text);
    this.pending++;
    write(this.fd, buf, 0, buf.length, null, (err) => {
      this.pending--;
      if (this.pending === 0) for (const r of this.idle.splice(0)) r();
      done(err ? { code: ExportResultCode.FAILED, error: err } : { code: ExportResultCode.SUCCESS });
    });
  }

  async forceFlush(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((r) => this.idle.push(r));
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
    if (this.fd !== undefined) {
      try { closeSync(this.fd); } catch { /* already closed */ }
      this.fd = undefined;
    }
  }
}

export interface TraceFileContents {
  spans: SpanRecord[];
  /** Lines that were not a span record (malformed JSON or missing fields): skipped, counted. */
  malformed: number;
  /** 1-based numbers of the first few malformed lines, for the message. */
  malformedLines: number[];
}

function isSpanRecord(x: unknown): x is SpanRecord {
  const r = x as SpanRecord;
  return typeof r === 'object' && r !== null && typeof r.traceId === 'string' && typeof r.spanId === 'string'
    && typeof r.name === 'string' && typeof r.startUnixMs === 'number' && typeof r.attributes === 'object' && r.attributes !== null;
}

/** Parses trace file text; a malformed line is skipped and counted, never fatal. */
export function parseTraceFile(text: string): TraceFileContents {
  const spans: SpanRecord[] = [];
  const malformedLines: number[] = [];
  let malformed = 0;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      rec = undefined;
    }
    if (isSpanRecord(rec)) {
      spans.push({ ...rec, events: rec.events ?? [], links: rec.links ?? [], service: rec.service ?? 'unknown', endUnixMs: rec.endUnixMs ?? rec.startUnixMs });
    } else {
      malformed++;
      if (malformedLines.length < 5) malformedLines.push(i + 1);
    }
  });
  spans.sort((a, b) => a.startUnixMs - b.startUnixMs);
  return { spans, malformed, malformedLines };
}

/** Reads and parses a trace file. */
export function readTraceFile(path: string): TraceFileContents {
  return parseTraceFile(readFileSync(path, 'utf8'));
}
