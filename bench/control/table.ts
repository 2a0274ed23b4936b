/**
 * A fixed-width text table: a header, a rule, the rows; columns two spaces apart, each as wide as its
 * longest cell, left-aligned where `left(i, count)` says so and right-aligned elsewhere; no trailing spaces.
 */
export function alignTable(head: string[], rows: string[][], left: (i: number, count: number) => boolean): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (left(i, cells.length) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
