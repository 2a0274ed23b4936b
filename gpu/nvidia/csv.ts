/**
 * Pure readers of nvidia-smi's CSV (`--format=csv[,noheader][,nounits]`). Liberal on purpose: a header
 * line or none, units or none ("81559 MiB", "12 %"), spaces around cells, quoted cells, and the
 * placeholders nvidia-smi prints for a value it cannot give ("[N/A]", "[Not Supported]", ...).
 */

/** Placeholders nvidia-smi prints instead of a value; all read as null. */
const UNAVAILABLE = /^\[?\s*(n\/a|not supported|not available|unknown error|insufficient permissions|gpu requires reset|not found|unknown)\s*\]?$|^err!$|^-$/i;

/** Splits one CSV line into trimmed cells; double quotes group a cell that holds commas. */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"') {
      if (quoted && line[i + 1] === '"') { cur += '"'; i++; } else quoted = !quoted;
    } else if (ch === ',' && !quoted) {
      cells.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
}

/** A text cell, or null for a placeholder. */
export function textCell(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const s = raw.trim();
  if (s === '' || UNAVAILABLE.test(s)) return null;
  return s;
}

const UNIT_TO_MIB: Record<string, number> = { kib: 1 / 1024, mib: 1, gib: 1024, kb: 1 / 1024, mb: 1, gb: 1024 };

/**
 * A number cell with or without its unit ("81559", "81559 MiB", "12 %", "12%"), or null for a placeholder.
 * With `toMiB`, memory units are converted to MiB. Throws on text that is neither.
 */
export function numberCell(raw: string | undefined, opts: { toMiB?: boolean } = {}): number | null {
  const s = textCell(raw);
  if (s === null) return null;
  const m = /^([-+]?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$/.exec(s);
  if (!m) throw new Error(`not a number: ${JSON.stringify(s)}`);
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  if (opts.toMiB && unit in UNIT_TO_MIB) return n * UNIT_TO_MIB[unit]!;
  return n;
}

/** True when a cell reads as a column name from nvidia-smi's header ("memory.total [MiB]", "pid"). */
function looksLikeHeaderCell(cell: string, field: string): boolean {
  const name = cell.replace(/\s*\[[^\]]*\]\s*$/, '').trim().toLowerCase();
  return name === field.toLowerCase() || /^[a-z_][a-z0-9_.]*$/i.test(name) && !/^\d/.test(name);
}

export interface CsvRows {
  /** Rows of exactly `fields.length` cells, in the order of `fields`. */
  rows: string[][];
  /** Lines that were not rows, with why (for a warning). */
  skipped: string[];
}

/**
 * Reads CSV rows of a query whose columns are `fields`, in that order. A header line is dropped; a row
 * with more cells than fields (a comma inside a free-text column) is merged back into `textField`.
 */
export function readCsvRows(text: string, fields: readonly string[], textField?: string): CsvRows {
  const rows: string[][] = [];
  const skipped: string[] = [];
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
  lines.forEach((line, i) => {
    let cells = splitCsvLine(line);
    if (i === 0 && cells.length === fields.length && cells.every((c, k) => looksLikeHeaderCell(c, fields[k]!))
      && cells.some((c, k) => c.replace(/\s*\[[^\]]*\]\s*$/, '').trim().toLowerCase() === fields[k]!.toLowerCase())) {
      return; // the header of --format=csv without noheader
    }
    if (cells.length > fields.length && textField !== undefined) {
      const at = fields.indexOf(textField);
      const extra = cells.length - fields.length;
      if (at >= 0) cells = [...cells.slice(0, at), cells.slice(at, at + extra + 1).join(', '), ...cells.slice(at + extra + 1)];
    }
    if (cells.length !== fields.length) {
      skipped.push(`${JSON.stringify(line)}: ${cells.length} cells, expected ${fields.length}`);
      return;
    }
    rows.push(cells);
  });
  return { rows, skipped };
}
