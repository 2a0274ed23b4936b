#!/usr/bin/env node
// `npm run build`: bundles the CLI's TypeScript into dist/ with esbuild (no type check: `npm run typecheck`).
//   dist/cli.js                      the CLI (bin/gpucolo.mjs runs it); each lazily loaded command is its own chunk
//   dist/fleet-worker.js, matrix-worker.js   the worker threads of `sim fleet` and `bench control`
//   dist/*.js.map                    source maps (bin/gpucolo.mjs turns them on: stack traces name the .ts lines)
//   dist/build-info.json             when it was built and from which files (bin/gpucolo.mjs checks it in a checkout)
// Packages stay external: the installed package resolves them from its node_modules.
//
// Two rewrites keep the sources' file reads working from dist/ (every output sits flat in dist/):
// - `new URL('./X.mjs', import.meta.url)`, a worker's tsx shim beside X.ts, becomes dist/X.js, built from X.ts
//   (WORKERS below; one missing there fails the build);
// - every other `import.meta.url` becomes the URL of the module's own source file (the package root's
//   sim/data.ts, not dist/), so paths relative to it (../data/fleet, ../package.json, ../bin/gpucolo.mjs, a
//   createRequire) resolve as they do under tsx, and a module's "am I the main script" check stays false.
// Any other import.meta property (dirname, filename) in a bundled module fails the build.
import { build } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
/** Worker entries: output name -> source (the .mjs tsx shim beside it is what the sources point a Worker at). */
const WORKERS = { 'fleet-worker': 'sim/fleet-worker.ts', 'matrix-worker': 'bench/control/matrix-worker.ts' };

const rel = (abs) => relative(ROOT, abs).split(sep).join('/');
const workerSources = new Set(Object.values(WORKERS));

/** The per-file rewrites of the header comment. */
const sourceUrls = {
  name: 'source-urls',
  setup(b) {
    b.onLoad({ filter: /\.ts$/, namespace: 'file' }, (args) => {
      const file = rel(args.path);
      if (file.startsWith('..') || file.startsWith('node_modules/')) return undefined;
      let text = readFileSync(args.path, 'utf8');
      const errors = [];
      // Placeholder first, so the source-URL rewrite below leaves the worker URLs on the real import.meta.url.
      text = text.replace(/new URL\((['"])\.\/([\w-]+)\.mjs\1, import\.meta\.url\)/g, (whole, _q, name) => {
        const src = rel(join(dirname(args.path), `${name}.ts`));
        if (WORKERS[name] !== src) errors.push({ text: `${file}: a worker entry ./${name}.mjs that bin/build.mjs does not build (add ${src} to WORKERS)` });
        return `new URL("./${name}.js", import.meta.__GPUCOLO_OUTPUT_URL__)`;
      });
      text = text.replace(/import\.meta\.url\b/g, `(new URL(${JSON.stringify(`../${file}`)}, import.meta.url).href)`);
      text = text.replaceAll('import.meta.__GPUCOLO_OUTPUT_URL__', 'import.meta.url');
      for (const m of text.matchAll(/import\.meta\.(?!url\b)(\w+)/g)) {
        errors.push({ text: `${file}: import.meta.${m[1]} would name dist/, not the source's folder: use import.meta.url` });
      }
      if (errors.length > 0) return { errors };
      return { contents: text, loader: 'ts' };
    });
  },
};

/** A worker entry: source maps on in its thread too, then the worker module. */
const workerEntries = {
  name: 'worker-entries',
  setup(b) {
    b.onResolve({ filter: /^worker-entry:/ }, (args) => ({ path: args.path.slice('worker-entry:'.length), namespace: 'worker-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'worker-entry' }, (args) => ({
      contents: `process.setSourceMapsEnabled(true);\nawait import(${JSON.stringify(join(ROOT, args.path))});\n`,
      loader: 'js',
      resolveDir: ROOT,
    }));
  },
};

const started = Date.now();
rmSync(DIST, { recursive: true, force: true });
mkdirSync(DIST, { recursive: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: [
    { in: 'cli/cli.ts', out: 'cli' },
    ...Object.entries(WORKERS).map(([out, src]) => ({ in: `worker-entry:${src}`, out })),
  ],
  outdir: DIST,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]', // flat: every output is dist/<file>.js, which the source-URL rewrite relies on
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  sourcesContent: false, // the package ships the sources themselves; the maps stay small to load
  metafile: true,
  logLevel: 'warning',
  plugins: [sourceUrls, workerEntries],
});
for (const w of workerSources) if (!existsSync(join(ROOT, w))) throw new Error(`bin/build.mjs: worker source ${w} is missing`);

// What the build read, for bin/gpucolo.mjs's freshness check in a checkout (this script counts too).
const inputs = Object.keys(result.metafile.inputs)
  .filter((p) => !p.startsWith('worker-entry:'))
  .map((p) => rel(resolve(ROOT, p)))
  .concat('bin/build.mjs')
  .sort();
writeFileSync(join(DIST, 'build-info.json'), `${JSON.stringify({ builtAt: started, inputs }, null, 1)}\n`);
const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
console.log(`dist/: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KiB, from ${inputs.length} sources in ${Date.now() - started} ms`);
