/**
 * Derives the compact files in data/ from the original traces (see data/README.md).
 *
 *   node --import tsx data/derive.ts [SOURCE_DIR]
 *
 * SOURCE_DIR holds the originals as published (default: ../shared/data beside the repository, or
 * $GPUCOLO_TRACE_DIR). Output is deterministic: rerunning it reproduces the committed files byte for byte.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * ServeGen language/m-large: one CSV per client, no header, columns window_start_s, rate_rps, cv,
 * iat_dist_name, p1, p2 (10-minute windows over 14 days). Returns the aggregate rate per window start.
 */
export function servegenAggregate(dir: string): { tS: number; rateRps: number }[] {
  const files = readdirSync(dir).filter((f) => /^chunk-\d+-trace\.csv$/.test(f)).sort();
  if (files.length === 0) throw new Error(`no chunk-N-trace.csv files in ${dir}`);
  const sum = new Map<number, number>();
  for (const f of files) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      const [t, r] = line.split(',');
      const tS = Number(t);
      const rate = Number(r);
      if (!Number.isFinite(tS) || !Number.isFinite(rate)) throw new Error(`${f}: bad line "${line}"`);
      sum.set(tS, (sum.get(tS) ?? 0) + rate);
    }
  }
  return [...sum.entries()].sort((a, b) => a[0] - b[0]).map(([tS, rateRps]) => ({ tS, rateRps }));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('data/derive.ts')) {
  const source = resolve(process.argv[2] ?? process.env.GPUCOLO_TRACE_DIR ?? join(here, '..', '..', 'shared', 'data'));
  const rows = servegenAggregate(join(source, 'alibaba-servegen', 'language', 'm-large'));
  const out = join(here, 'servegen-m-large-rate.csv');
  writeFileSync(out, `t_s,rate_rps\n${rows.map((r) => `${r.tS},${r.rateRps.toFixed(4)}`).join('\n')}\n`);
  const mean = rows.reduce((a, r) => a + r.rateRps, 0) / rows.length;
  const peak = Math.max(...rows.map((r) => r.rateRps));
  console.log(`${out}: ${rows.length} windows, mean ${mean.toFixed(1)} req/s, peak/mean ${(peak / mean).toFixed(2)}`);
}
