// The source layout's rules (the architecture issue's bar):
//   (a) a source file imports another folder only through that folder's index.ts (its face);
//   (b) no source .ts file outside test/ is over MAX_LINES lines;
//   (c) every folder in FOLDERS has an index.ts.
// A folder is one of FOLDERS: a sub-folder listed there (gpu/model, bench/control, ...) is a folder of its own,
// not part of its parent. Files outside FOLDERS (data/, deploy/, bin/) are checked as importers too, their folder
// being their first path segment. Tests are not sources: they may reach into any file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** The folders with a face (index.ts). Sub-folders listed here are their own folders. */
export const FOLDERS = [
  'actors',
  'bench',
  'bench/control',
  'bus',
  'bus/auth',
  'cli',
  'control',
  'gpu',
  'gpu/calibrate',
  'gpu/model',
  'gpu/nvidia',
  'observability',
  'runners/fleet',
  'runners/host',
  'runners/host/nvidia',
  'schemas',
  'sim',
] as const;

export const MAX_LINES = 450;

/** Paths never scanned: not sources (build outputs, packages, tests, data the tools read). */
const NOT_SOURCE = /^(node_modules|dist|test|\.git|\.gpu|out|bench\/results|workloads)\//;

/**
 * Cross-folder imports allowed to skip the index, each with its reason. Keyed "importer -> target" (paths
 * relative to the repository root). Keep this empty unless an index cannot serve.
 */
export const ALLOWED: Record<string, string> = {};

/** The folder a repository path belongs to (see the header). */
export function folderOf(path: string): string {
  const sub = [...FOLDERS].filter((f) => f.includes('/')).sort((a, b) => b.length - a.length).find((f) => path.startsWith(`${f}/`));
  if (sub !== undefined) return sub;
  const i = path.indexOf('/');
  return i < 0 ? '.' : path.slice(0, i);
}

/** Source files (.ts, .mjs) outside test/: git's tracked and untracked-but-not-ignored files, else a walk. */
function sourceFiles(): string[] {
  const r = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  let files: string[];
  if (r.status === 0) {
    files = r.stdout.split('\n').filter((f) => f !== '' && existsSync(join(ROOT, f)));
  } else {
    files = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
        const p = dir === '' ? e.name : `${dir}/${e.name}`;
        if (e.isDirectory()) { if (!NOT_SOURCE.test(`${p}/`) && e.name !== 'dev') walk(p); } else files.push(p);
      }
    };
    walk('');
  }
  return files.filter((f) => /\.(ts|mjs)$/.test(f) && !f.endsWith('.d.ts') && !NOT_SOURCE.test(f)).sort();
}

/** Every module specifier a file names: `from '...'` (import and export), `import('...')`, `import '...'`. */
export function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\bfrom\s*(['"])([^'"\n]+)\1/g)) out.push(m[2]!);
  for (const m of text.matchAll(/\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g)) out.push(m[2]!);
  for (const m of text.matchAll(/^\s*import\s*(['"])([^'"\n]+)\1/gm)) out.push(m[2]!);
  return out;
}

/** The violations of rule (a) among `files` (repository paths), as "importer -> target". */
export function crossFolderViolations(files: readonly string[], read: (f: string) => string): string[] {
  const bad: string[] = [];
  for (const file of files) {
    const from = folderOf(file);
    for (const spec of specifiers(read(file))) {
      if (!spec.startsWith('.')) continue; // a package or node: builtin
      const target = posix.normalize(posix.join(posix.dirname(file), spec));
      if (NOT_SOURCE.test(target) || !/\.(ts|mjs)$/.test(target)) continue; // dist/ and the like: not a source
      const to = folderOf(target);
      if (to === from) continue;
      if (target === `${to}/index.ts`) continue;
      const key = `${file} -> ${target}`;
      if (key in ALLOWED) continue;
      bad.push(key);
    }
  }
  return [...new Set(bad)];
}

const lines = (text: string) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

test('layout - a source file imports another folder only through its index.ts', () => {
  const files = sourceFiles();
  assert.ok(files.length > 50, `found ${files.length} source files`);
  const bad = crossFolderViolations(files, (f) => readFileSync(join(ROOT, f), 'utf8'));
  assert.deepEqual(bad, [], `imports that skip the target folder's index.ts:\n  ${bad.join('\n  ')}`);
});

test('layout - every allowed exception still exists', () => {
  const files = new Set(sourceFiles());
  for (const key of Object.keys(ALLOWED)) {
    const [importer] = key.split(' -> ');
    assert.ok(files.has(importer!), `ALLOWED names ${importer}, which is no longer a source file`);
  }
});

test(`layout - no source file is over ${MAX_LINES} lines`, () => {
  const over = sourceFiles()
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ f, n: lines(readFileSync(join(ROOT, f), 'utf8')) }))
    .filter(({ n }) => n > MAX_LINES)
    .map(({ f, n }) => `${f} (${n})`);
  assert.deepEqual(over, [], `split these files: ${over.join(', ')}`);
});

test('layout - every folder has an index.ts', () => {
  const missing = FOLDERS.filter((f) => !existsSync(join(ROOT, f, 'index.ts')));
  assert.deepEqual(missing, [], `add an index.ts to: ${missing.join(', ')}`);
});

test('layout - the checker catches what it should', () => {
  const src: Record<string, string> = {
    'actors/a.ts': "import { x } from '../control/types.ts';\n",
    'actors/b.ts': "import {\n  y,\n} from '../gpu/model/physics.ts';\n",
    'actors/c.ts': "const m = await import('../bus/bus.ts');\n",
    'actors/d.ts': "export * from '../sim/fleet.ts';\n",
    'actors/e.ts': "import type { T } from '../control/index.ts';\nimport { z } from './e2.ts';\n",
    'gpu/model/f.ts': "import type { G } from '../types.ts';\nimport { h } from '../nvidia/index.ts';\n",
    'gpu/g.ts': "import { k } from './model/physics.ts';\n",
    'bench/h.ts': "import { c } from './control/cell.ts';\nimport { d } from './control/index.ts';\n",
  };
  const bad = crossFolderViolations(Object.keys(src), (f) => src[f]!);
  assert.deepEqual(bad, [
    'actors/a.ts -> control/types.ts',
    'actors/b.ts -> gpu/model/physics.ts',
    'actors/c.ts -> bus/bus.ts',
    'actors/d.ts -> sim/fleet.ts',
    'gpu/model/f.ts -> gpu/types.ts',
    'gpu/g.ts -> gpu/model/physics.ts',
    'bench/h.ts -> bench/control/cell.ts',
  ]);
});
