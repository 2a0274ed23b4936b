// Entry of the one-file gpucolo bundle carried to a GPU host (`deploy/gpu-host/run.sh pack`).
// gpu/model/calibration.ts runs as a script when process.argv[1] is its own file, and inside a bundle every module is
// the bundle's file: load it with argv[1] cleared, so the bundle runs the CLI only.
const argv1 = process.argv[1];
process.argv[1] = '';
await import('../../gpu/model/index.ts');
process.argv[1] = argv1!;
const { main } = await import('../../cli/index.ts');
await main(process.argv);
