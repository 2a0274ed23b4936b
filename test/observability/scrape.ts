import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { sleep, waitFor } from '../support/wait.ts';
import { BIN } from './helpers.ts';

/** One Prometheus text exposition, parsed: metric families (by `# TYPE`), samples with their labels. */
export interface Scrape {
  text: string;
  families: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
  labelNames: Set<string>;
}

export function parseScrape(text: string): Scrape {
  const families = new Map<string, string>();
  const samples: Scrape['samples'] = [];
  const labelNames = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) { families.set(type[1]!, type[2]!); continue; }
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
      labelNames.add(l[1]!);
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { text, families, samples, labelNames };
}

/** GETs /metrics until `ready` says the scrape holds what the test needs (or the deadline passes). */
export async function scrapeUntil(url: string, ready: (s: Scrape) => boolean, timeoutMs = 30_000): Promise<Scrape> {
  let last = parseScrape('');
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      last = parseScrape(await (await fetch(url)).text());
      if (ready(last)) return last;
    } catch {
      // not serving yet
    }
    await sleep(200);
  }
  return last;
}

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');

/** Every PromQL expression in deploy/: the dashboard's targets and the alert rules. */
export function deployQueries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'gpucolo-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; definition?: string }[] };
  };
  for (const p of dash.panels) for (const t of p.targets ?? []) out.push({ where: `dashboard panel "${p.title}"`, expr: t.expr });
  for (const v of dash.templating.list) if (v.definition) out.push({ where: `dashboard variable $${v.name}`, expr: v.definition });
  const rules = parseYaml(readFileSync(join(DEPLOY, 'prometheus', 'gpucolo-rules.yaml'), 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  for (const g of rules.groups) for (const r of g.rules) out.push({ where: `rule ${r.alert ?? r.record}`, expr: String(r.expr) });
  return out;
}

/** The `gpucolo_*` identifiers of an expression: metric names and label names alike. */
export function gpucoloNames(expr: string): string[] {
  return [...new Set(expr.match(/\bgpucolo_[a-z0-9_]+/g) ?? [])];
}

/** The family a sample name belongs to (histogram series carry _bucket, _sum, _count). */
export function familyOf(name: string, families: Map<string, string>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return families.get(base) === 'histogram' ? base : undefined;
}

/** A running CLI process whose stderr is collected as it comes. */
export interface LiveCli {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Resolves with the first match of `re` in stderr+stdout (rejects after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

export function startCli(args: string[], env: Record<string, string | undefined> = {}): LiveCli {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child, stderr: () => err, stdout: () => out, exited,
    waitFor(re, timeoutMs = 30_000) {
      const seen = () => `${re} in the output of gpucolo ${args.join(' ')}: ${err.slice(-2000)}`;
      return waitFor(() => {
        const m = (err + out).match(re);
        if (!m && child.exitCode !== null) throw new Error(`no ${seen()}`);
        return m;
      }, timeoutMs, seen, 50);
    },
  };
}
