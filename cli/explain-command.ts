import { existsSync } from 'node:fs';
import { explain, formatExplanation, parseTimeBound, readTraceFile, type ExplainFilter, type TraceFileContents } from '../observability/index.ts';
import { GPU_REF_PATTERN } from '../schemas/index.ts';
import { UsageError } from './errors.ts';

export interface ExplainFlags {
  file: string;
  gpu?: string;
  since?: string;
  until?: string;
  json?: boolean;
}

/** Reads a trace file for a command; a missing or unreadable file is a runtime error saying which. */
export function loadTraceFile(file: string): TraceFileContents {
  if (!existsSync(file)) throw new Error(`trace file ${file} does not exist (write one with --trace-file on host or demo)`);
  try {
    return readTraceFile(file);
  } catch (err) {
    throw new Error(`cannot read trace file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Tells on stderr how many lines were skipped. */
export function reportMalformed(file: string, t: TraceFileContents): void {
  if (t.malformed) process.stderr.write(`${file}: skipped ${t.malformed} malformed line(s) (first at line ${t.malformedLines.join(', ')})\n`);
}

function bound(flag: string, raw: string | undefined) {
  if (raw === undefined) return undefined;
  const b = parseTimeBound(raw);
  if (!b) throw new UsageError(`${flag} must be an ISO date-time (2026-11-25T07:22:30Z) or a device time such as 40s, 2m or 1500ms, got ${JSON.stringify(raw)}`);
  return b;
}

/** `gpucolo explain FILE`: per GPU, every knob change and why, one line each. */
export function explainCommand(f: ExplainFlags): void {
  if (f.gpu !== undefined && !new RegExp(GPU_REF_PATTERN).test(f.gpu)) {
    throw new UsageError(`--gpu must be HOST/GPU, e.g. host0/gpu1, got ${JSON.stringify(f.gpu)}`);
  }
  const filter: ExplainFilter = {};
  const since = bound('--since', f.since);
  const until = bound('--until', f.until);
  if (since) filter.since = since;
  if (until) filter.until = until;
  if (f.gpu) filter.gpu = f.gpu;
  const t = loadTraceFile(f.file);
  reportMalformed(f.file, t);
  const e = explain(t.spans, filter);
  if (f.gpu && e.gpus.length === 0) throw new Error(`no spans of GPU ${f.gpu} in ${f.file}`);
  const changes = e.gpus.reduce((a, g) => a + g.changes.length, 0);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ file: f.file, spans: e.spans, malformed: t.malformed, gpus: e.gpus })}\n`);
    return;
  }
  if (e.gpus.length) process.stdout.write(`${formatExplanation(e)}\n`);
  process.stderr.write(`${changes} knob change(s) on ${e.gpus.length} GPU(s) from ${e.spans} span(s) in ${f.file}\n`);
}
