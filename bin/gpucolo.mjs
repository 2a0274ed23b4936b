#!/usr/bin/env node
// Entry point: runs the compiled CLI, dist/cli.js (`npm run build`; no TypeScript loader at run time).
// In a git checkout, where dist/ may be missing or older than the sources (an edit, a pull), it runs the
// TypeScript sources through tsx instead (a devDependency there), so what runs is always the code in the
// tree: dist/build-info.json lists what the build read, and one file changed after the build start is enough.
// GPUCOLO_RUN=build or GPUCOLO_RUN=source forces one (build: an error when dist/ is missing, never tsx).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const mode = process.env.GPUCOLO_RUN;

/** True when dist/ holds a build and, in a checkout, none of its inputs changed after it began. */
function buildUsable() {
  if (!existsSync(new URL('dist/cli.js', root))) return false;
  if (mode === 'build' || !existsSync(new URL('.git', root))) return true;
  try {
    const { builtAt, inputs } = JSON.parse(readFileSync(new URL('dist/build-info.json', root), 'utf8'));
    for (const f of inputs) {
      const s = statSync(new URL(f, root), { throwIfNoEntry: false });
      if (s === undefined || s.mtimeMs >= builtAt) return false;
    }
    return true;
  } catch {
    return false;
  }
}

let cli;
if (mode !== 'source' && buildUsable()) {
  process.setSourceMapsEnabled(true); // before the import: stack traces name the .ts files and lines
  // Which code runs, for what reports it (`bench fleet` timings depend on it): 'build' or 'source'.
  process.env.GPUCOLO_RUNTIME = 'build';
  cli = await import('../dist/cli.js');
} else {
  const tsx = mode === 'build' ? undefined : await import('tsx/esm/api').catch(() => undefined);
  if (tsx === undefined) {
    const why = mode === 'build' ? 'GPUCOLO_RUN=build and no usable build' : 'no usable build, and no tsx to run the TypeScript sources';
    process.stderr.write(`gpucolo: ${why} in ${fileURLToPath(new URL('dist/', root))}: run \`npm run build\` in ${fileURLToPath(root)}\n`);
    process.exit(1);
  }
  tsx.register();
  process.env.GPUCOLO_RUNTIME = 'source';
  cli = await import('../cli/index.ts');
}
await cli.main(process.argv);
