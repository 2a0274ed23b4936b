import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  DEFAULT_PLAN, QUICK_PLAN, estimatePlanMs, fitProfile, makePlan, PlanError, runCalibration, simPlant, startNvidiaPlant,
  type CalibrationPlan, type FitPoint, type Plant,
} from '../gpu/calibrate/index.ts';
import { loadProfile, type GpuProfile } from '../gpu/model/index.ts';
import { binariesFromEnv } from '../gpu/nvidia/index.ts';
import { UsageError, numberFlag } from './errors.ts';

export interface CalibrateFlags {
  backend?: string;
  workloads?: string;
  profile?: string;
  out?: string;
  name?: string;
  base?: string;
  quick?: boolean;
  plan?: string;
  batch?: string;
  seed?: string;
  stateDir?: string;
  json?: boolean;
}

const slug = (s: string) => s.toLowerCase().replace(/\(simulated\)/g, 'sim').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'gpu';
const fmt = (x: number, unit: FitPoint['unit']) => (unit === 'ratio' ? x.toFixed(3) : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(3));

/** The measured-against-fitted table, one line per point. */
export function pointsTable(points: FitPoint[]): string {
  const rows = points.map((p) => [p.kind, p.setting, `${fmt(p.measured, p.unit)}${p.unit === 'ms' ? ' ms' : ''}`, `${fmt(p.fitted, p.unit)}${p.unit === 'ms' ? ' ms' : ''}`, `${p.errorPct >= 0 ? '+' : ''}${p.errorPct.toFixed(1)}%`]);
  const head = ['what', 'setting', 'measured', 'fitted', 'error'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 2 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The fitted parameters a profile's behaviour rests on, one line. */
export function parametersLine(p: GpuProfile): string {
  return `fixedMs ${p.inference.fixedMs}, perItemMs ${p.inference.perItemMs}, jitterSigma ${p.inference.jitterSigma}; ` +
    `I(100%) ${p.interference.mpsAt100Pct}, interference exponent ${p.interference.mpsShareExponent}, tailProb ${p.interference.tailProb}, tailFactor ${p.interference.tailFactor}; ` +
    `iterAloneMs ${p.training.iterAloneMs}, training share exponent ${p.training.shareExponent}, slowdownWhileInferring ${p.training.slowdownWhileInferring}; mpsRestartMs ${p.mpsRestartMs}`;
}

function readPlan(f: CalibrateFlags): CalibrationPlan {
  let overrides: unknown;
  if (f.plan) {
    let text: string;
    try { text = readFileSync(f.plan, 'utf8'); } catch (err) { throw new UsageError(`cannot read --plan ${f.plan}: ${(err as Error).message}`); }
    try { overrides = JSON.parse(text); } catch (err) { throw new UsageError(`--plan ${f.plan} is not JSON: ${(err as Error).message}`); }
  }
  let plan: CalibrationPlan;
  try {
    plan = makePlan(f.quick ? QUICK_PLAN : DEFAULT_PLAN, overrides, `--plan ${f.plan ?? ''}`.trim());
  } catch (err) {
    if (err instanceof PlanError) throw new UsageError(err.message);
    throw err;
  }
  if (f.batch !== undefined) plan.batch = numberFlag('--batch', f.batch, { integer: true, min: 1 });
  return plan;
}

/** `gpucolo calibrate`: measure a GPU (real or simulated), fit a profile, print measured against fitted. */
export async function calibrateCommand(f: CalibrateFlags): Promise<void> {
  const t0 = Date.now();
  if (!f.backend) throw new UsageError('--backend is required: nvidia (a real GPU named in --workloads) or sim:1 (a simulated GPU of --profile)');
  if (!f.out) throw new UsageError('--out FILE is required: where the fitted profile (JSON) is written');
  const sim = /^sim:(\d+)$/.exec(f.backend);
  if (!sim && f.backend !== 'nvidia') throw new UsageError(`--backend must be nvidia or sim:1, got ${JSON.stringify(f.backend)}`);
  if (sim && sim[1] !== '1') throw new UsageError(`calibrate measures one GPU: use --backend sim:1, got ${f.backend}`);
  const plan = readPlan(f);
  const base = (() => {
    try { return loadProfile(f.base ?? 'rtx3090-resnet50-wrn101'); } catch (err) { throw new UsageError(`--base: ${(err as Error).message}`); }
  })();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const out = f.json ? log : (line: string) => process.stdout.write(`${line}\n`);

  let plant: Plant;
  let how: string;
  let models: { inference: string; training: string };
  if (sim) {
    if (f.stateDir) throw new UsageError('--state-dir is for --backend nvidia');
    let profileRef = f.profile;
    if (f.workloads) {
      const { loadWorkloads, workloadFor } = await import('../runners/host/index.ts');
      const w = loadWorkloads(f.workloads);
      profileRef ??= w.profile;
      if (f.batch === undefined) plan.batch = workloadFor(w, 0).services[0]!.batch;
    }
    if (!profileRef) throw new UsageError('--backend sim:1 needs --profile NAME|FILE: the simulated GPU to measure (or a --workloads file naming one)');
    let profile: GpuProfile;
    try { profile = loadProfile(profileRef); } catch (err) { throw new UsageError(`--profile: ${(err as Error).message}`); }
    const seed = numberFlag('--seed', f.seed ?? '1', { integer: true, min: 0 });
    plant = simPlant(profile, { batch: plan.batch, seed, log });
    plan.pollMs = Math.min(plan.pollMs, f.plan ? plan.pollMs : 10);
    how = `gpucolo calibrate --backend sim:1${f.quick ? ' --quick' : ''} (seed ${seed})`;
    models = { inference: 'simulated inference', training: 'simulated training' };
    log(`calibrate: a simulated GPU (the plant of ${profileRef}, seen only through what it measures), ${planText(plan)}; about ${(estimatePlanMs(plan, 7000, 0) / 60000).toFixed(1)} min of simulated time with 7 s restarts`);
  } else {
    if (f.profile) throw new UsageError('--profile is for --backend sim:1 (a real GPU is measured, not given)');
    if (!f.workloads) throw new UsageError('--backend nvidia needs --workloads FILE (YAML or JSON, as for gpucolo host --backend nvidia): the GPU, the inference command (a closed loop; {batch} in its argv takes the batch size) and the training command');
    const nv = await import('../runners/host/nvidia/index.ts');
    const file = nv.loadNvidiaWorkloads(f.workloads);
    const baseDir = dirname(resolve(f.workloads));
    const w = file.gpus[0]!;
    if (file.gpus.length > 1) log(`calibrate: measuring the first GPU entry of ${f.workloads} only (GPU ${JSON.stringify(w.gpu)})`);
    const service = w.services.find((s) => s.command);
    if (!service) throw new UsageError(`workloads file ${f.workloads}: /gpus/0 needs an inference service with a command: calibrate launches it at each batch size`);
    if (service.latency.source !== 'stdout') throw new UsageError(`workloads file ${f.workloads}: service ${service.id}: calibrate reads latency from stdout ({"latencyMs": ...} per request), got source ${service.latency.source}`);
    const training = w.trainings[0];
    if (!training) throw new UsageError(`workloads file ${f.workloads}: /gpus/0 needs a training job`);
    const chosen = await nv.matchNvidiaGpus({ ...file, gpus: [w] }, log);
    const { gpu } = chosen[0]!;
    const stateDir = resolve(f.stateDir ?? nv.defaultStateDir('calibrate'));
    const abs = (p: string | undefined) => (p === undefined ? baseDir : resolve(baseDir, p));
    const started = await startNvidiaPlant({
      gpu, stateDir, binaries: binariesFromEnv(), log, ...(file.leaseTtlMs ? { leaseTtlMs: file.leaseTtlMs } : {}),
      service: { id: service.id, command: service.command!, cwd: abs(service.cwd), ...(service.env ? { env: service.env } : {}), ...(service.stopGraceS !== undefined ? { stopGraceMs: service.stopGraceS * 1000 } : {}) },
      training: { id: training.id, command: training.command, pacing: training.pacing, cwd: abs(training.cwd), ...(training.env ? { env: training.env } : {}), ...(training.checkpointGraceS !== undefined ? { checkpointGraceMs: training.checkpointGraceS * 1000 } : {}) },
    });
    plant = started;
    if (!plant.batchSweep) {
      plant.fixedBatch = plan.batch;
      log(`calibrate: the command of ${service.id} has no {batch}: one batch size is measured (taken to be --batch ${plan.batch}), perItemMs is not fitted`);
    }
    how = `gpucolo calibrate --backend nvidia${f.quick ? ' --quick' : ''} (GPU ${gpu.index}, ${gpu.name}; inference ${service.id}: ${service.command!.join(' ')}; training ${training.id}: ${training.command.join(' ')}, ${training.pacing} pacing)`;
    models = { inference: service.id, training: training.id };
    log(`calibrate: GPU ${gpu.index} ${gpu.name} (${gpu.uuid}), ${planText(plan)}; about ${(estimatePlanMs(plan, 10_000, plant.batchSweep ? 10_000 : 0) / 60000).toFixed(1)} min if a restart takes 10 s; state in ${stateDir}`);
  }

  // Ctrl-C or SIGTERM: stop the workloads and the MPS daemon before leaving.
  const onSignal = (sig: NodeJS.Signals) => {
    log(`calibrate: ${sig}: stopping the workloads`);
    void plant.device.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let m;
  try {
    m = await runCalibration(plant, plan);
  } finally {
    await plant.device.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const name = f.name ?? `calibrated-${slug(m.device.name)}`;
  const fit = fitProfile(m, { name, how, inferenceModel: models.inference, trainingModel: models.training, base });
  mkdirSync(dirname(resolve(f.out)), { recursive: true });
  writeFileSync(f.out, `${JSON.stringify(fit.profile, null, 2)}\n`);

  const worst = Math.max(...fit.points.map((p) => Math.abs(p.errorPct)));
  out(`Calibration of ${m.device.name}: ${fit.points.length} points measured, against profile ${name} fitted to them`);
  out(pointsTable(fit.points));
  out(`fitted: ${parametersLine(fit.profile)}`);
  for (const n of fit.notes) out(`note: ${n}`);
  if (m.skipped.length) out(`skipped (budget ${(plan.budgetMs / 60000).toFixed(1)} min spent): ${m.skipped.join('; ')}`);
  out(`largest error ${worst.toFixed(1)}%; device time ${(m.deviceMs / 60000).toFixed(2)} min; wall time ${((Date.now() - t0) / 1000).toFixed(1)} s; profile written to ${f.out}`);
  if (f.json) {
    const r = (x: number) => Number(x.toPrecision(5));
    process.stdout.write(`${JSON.stringify({
      out: f.out, profile: name, backend: f.backend, parameters: {
        fixedMs: fit.profile.inference.fixedMs, perItemMs: fit.profile.inference.perItemMs, jitterSigma: fit.profile.inference.jitterSigma,
        mpsAt100Pct: fit.profile.interference.mpsAt100Pct, interferenceExponent: fit.profile.interference.mpsShareExponent,
        tailProb: fit.profile.interference.tailProb, tailFactor: fit.profile.interference.tailFactor,
        iterAloneMs: fit.profile.training.iterAloneMs, shareExponent: fit.profile.training.shareExponent,
        slowdownWhileInferring: fit.profile.training.slowdownWhileInferring, mpsRestartMs: fit.profile.mpsRestartMs,
      },
      points: fit.points.map((p) => ({ ...p, measured: r(p.measured), fitted: r(p.fitted), errorPct: r(p.errorPct) })),
      maxErrorPct: r(worst), deviceMs: Math.round(m.deviceMs), wallMs: Date.now() - t0, skipped: m.skipped, notes: fit.notes,
    })}\n`);
  }
}

function planText(p: CalibrationPlan): string {
  return `plan: ${p.batches.length} batch sizes alone, noise at batch ${p.batch}, shares ${p.shares.join('/')}% x duties ${p.duties.join('/')}, budget ${(p.budgetMs / 60000).toFixed(1)} min`;
}
