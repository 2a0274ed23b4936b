import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { reportData, reportHtml } from '../observability/index.ts';
import { UsageError } from './errors.ts';
import { loadTraceFile, reportMalformed } from './explain-command.ts';

export interface ReportFlags {
  file: string;
  out: string;
  json?: boolean;
}

/** `gpucolo report FILE -o report.html`: one self-contained HTML file with the charts of a run. */
export function reportCommand(f: ReportFlags): void {
  if (!f.out || !f.out.trim()) throw new UsageError('-o/--out must name the HTML file to write, e.g. -o report.html');
  const t = loadTraceFile(f.file);
  reportMalformed(f.file, t);
  const data = reportData(t.spans, `gpucolo run: ${basename(f.file)}`);
  if (data.gpus.length === 0) throw new Error(`no GPU status or decision spans in ${f.file}: was it written by host or demo --trace-file?`);
  try {
    writeFileSync(f.out, reportHtml(data));
  } catch (err) {
    throw new Error(`cannot write ${f.out}: ${(err as Error).message}`, { cause: err });
  }
  const summary = { out: f.out, gpus: data.gpus.length, charts: data.charts.length, spans: data.spans, malformed: t.malformed };
  if (f.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`wrote ${f.out}: ${summary.charts} charts of ${summary.gpus} GPU(s) from ${summary.spans} span(s)\n`);
}
