import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseNvidiaWorkloads } from '../../runners/host/nvidia/nvidia-backend.ts';
import { assertId } from '../../schemas/index.ts';
import { BIN, runCli } from '../observability/helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const read = (...p: string[]) => readFileSync(join(DEPLOY, ...p), 'utf8');

/** The path of a tool on PATH, or undefined (the check that needs it is skipped, saying so). */
function tool(name: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const helpCache = new Map<string, string>();
async function help(cmd: string): Promise<string> {
  if (!helpCache.has(cmd)) {
    const r = await runCli([cmd, '--help']);
    assert.equal(r.code, 0, r.stderr);
    helpCache.set(cmd, r.stdout);
  }
  return helpCache.get(cmd)!;
}

/** Every `--flag` in a command line is one the subcommand's --help lists. */
async function assertFlagsExist(cmd: 'host' | 'fleet', line: string, where: string): Promise<void> {
  const flags = [...line.matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((m) => m[1]!);
  assert.ok(flags.length > 0, `${where}: flags found`);
  const text = await help(cmd);
  for (const f of flags) assert.match(text, new RegExp(`${f}\\b`), `${where}: gpucolo ${cmd} has no ${f}`);
}

/** systemd unit sections as key -> values (repeated keys kept in order). */
function unit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) { section = s[1]!; out[section] = {}; continue; }
    const i = line.indexOf('=');
    (out[section]![line.slice(0, i)] ??= []).push(line.slice(i + 1));
  }
  return out;
}

const envFile = (text: string) => Object.fromEntries(text.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

test('deploy systemd - systemd-analyze verify passes both units without a warning', (t) => {
  const analyze = tool('systemd-analyze');
  if (!analyze) { t.skip('systemd-analyze is not installed'); return; }
  // verify checks that ExecStart's binary exists: point it at this checkout's gpucolo instead of /usr/local/bin.
  const dir = mkdtempSync(join(tmpdir(), 'gpucolo-units-'));
  for (const name of ['gpucolo-host.service', 'gpucolo-fleet.service']) {
    const text = read('systemd', name);
    assert.match(text, /^ExecStart=\/usr\/local\/bin\/gpucolo /m);
    writeFileSync(join(dir, name), text.replaceAll('/usr/local/bin/gpucolo', BIN));
  }
  const r = spawnSync(analyze, ['verify', '--man=no', join(dir, 'gpucolo-host.service'), join(dir, 'gpucolo-fleet.service')], { encoding: 'utf8' });
  // systemd-analyze exits 0 on an unknown key or a bad value, with a warning: any output is a failure.
  assert.equal(r.status, 0, r.stderr);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '');
});

test('deploy systemd - env file, restart on failure, readiness on /readyz, and flags the CLI knows', async () => {
  for (const [name, cmd, env] of [['gpucolo-host.service', 'host', 'host.env.example'], ['gpucolo-fleet.service', 'fleet', 'fleet.env.example']] as const) {
    const u = unit(read('systemd', name));
    const s = u.Service!;
    assert.deepEqual(s.Restart, ['on-failure'], `${name}: restarts on failure`);
    assert.match(s.EnvironmentFile![0]!, /^\/etc\/gpucolo\/\w+\.env$/);
    assert.deepEqual(s.KillSignal, ['SIGTERM']);
    const exec = s.ExecStart![0]!;
    assert.match(exec, new RegExp(`^/usr/local/bin/gpucolo ${cmd} `));
    assert.match(exec, /--health-port \$\{GPUCOLO_HEALTH_PORT\}/);
    assert.match(s.ExecStartPost![0]!, /http:\/\/127\.0\.0\.1:\$\{GPUCOLO_HEALTH_PORT\}\/readyz/, `${name}: started only once ready`);
    // Every variable the unit expands is in the example env file, and its extra flags are the CLI's.
    const vars = envFile(read('systemd', env));
    for (const v of exec.matchAll(/\$\{?(\w+)\}?/g)) assert.ok(vars[v[1]!] !== undefined, `${name}: ${v[1]} is in ${env}`);
    const line = exec.replace(/\$\{?(\w+)\}?/g, (_, v: string) => vars[v] ?? '');
    await assertFlagsExist(cmd, line.replace(/^\S+ \S+ /, ''), name);
    assert.ok(vars.NATS_URL && vars.OTEL_METRICS_EXPORTER === 'prometheus', `${env}: NATS and metrics`);
  }
});

test('deploy prometheus - promtool checks the rules and its unit tests fire each alert', (t) => {
  const promtool = tool('promtool');
  if (!promtool) { t.skip('promtool is not installed (Debian: apt-get install prometheus)'); return; }
  const dir = join(DEPLOY, 'prometheus');
  const check = spawnSync(promtool, ['check', 'rules', 'gpucolo-rules.yaml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: 3 rules found/);
  const unitTests = spawnSync(promtool, ['test', 'rules', 'gpucolo-rules.test.yaml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(unitTests.status, 0, unitTests.stdout + unitTests.stderr);
});

test('deploy prometheus - every alert has a test in gpucolo-rules.test.yaml that expects it to fire', () => {
  const rules = parseYaml(read('prometheus', 'gpucolo-rules.yaml')) as { groups: { rules: { alert: string; labels: { severity: string } }[] }[] };
  const tests = parseYaml(read('prometheus', 'gpucolo-rules.test.yaml')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
  const fired = new Set(tests.tests.flatMap((x) => x.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
  const alerts = rules.groups.flatMap((g) => g.rules);
  assert.deepEqual(alerts.map((a) => a.alert).sort(), ['GpucoloSafetyEvent', 'GpucoloSloAttainmentLow', 'GpucoloTrainingPausedPastLease']);
  for (const a of alerts) {
    assert.ok(fired.has(a.alert), `${a.alert} is tested firing`);
    assert.ok(['critical', 'warning'].includes(a.labels.severity));
  }
});

test('deploy grafana - the dashboard is valid JSON with a panel per concern, every query on the $datasource variable', () => {
  const d = JSON.parse(read('grafana', 'gpucolo-dashboard.json')) as {
    uid: string; schemaVersion: number;
    panels: { id: number; title: string; type: string; datasource: { uid: string }; gridPos: { x: number; y: number; w: number; h: number }; targets: { expr: string; refId: string }[] }[];
    templating: { list: { name: string; type: string }[] };
  };
  assert.equal(d.uid, 'gpucolo-overview');
  assert.ok(d.schemaVersion >= 36);
  assert.deepEqual(d.templating.list.map((v) => v.name), ['datasource', 'host', 'gpu']);
  const ids = d.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr)).join('\n');
  for (const [concern, re] of [
    ['p99 against SLO', /histogram_quantile\(0\.99, .*gpucolo_inference_latency_seconds_bucket[\s\S]*gpucolo_inference_slo_seconds/],
    ['attainment', /gpucolo_slo_attainment_ratio/], ['duty', /gpucolo_training_sleep_duty_ratio/], ['MPS share', /gpucolo_training_mps_share_percent/],
    ['training throughput', /gpucolo_training_iterations_per_second/], ['decisions', /gpucolo_control_decisions_total/],
    ['safety', /gpucolo_gpu_safe_mode/], ['DCGM join on the GPU UUID', /on \(gpu_uuid\)/],
  ] as const) assert.match(exprs, re, concern);
  for (const p of d.panels) {
    assert.equal(p.datasource.uid, '${datasource}', `${p.title}: uses the datasource variable`);
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title}: fits the 24-column grid`);
    for (const t of p.targets) {
      // Balanced brackets: a cheap guard against a mangled query.
      for (const [o, c] of [['(', ')'], ['{', '}'], ['[', ']']]) assert.equal(t.expr.split(o).length, t.expr.split(c).length, `${p.title} ${t.refId}: ${o}${c} balanced`);
    }
  }
});

interface K8sObject {
  apiVersion: string; kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}

function manifests(): K8sObject[] {
  const dir = join(DEPLOY, 'kubernetes');
  const out: K8sObject[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml' && n !== 'nats-values.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${f}: YAML errors`);
      out.push(doc.toJS() as K8sObject);
    }
  }
  return out;
}

interface Container {
  name: string; image: string; command?: string[]; args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } }; livenessProbe: { httpGet: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec { hostIPC?: boolean; hostPID?: boolean; shareProcessNamespace?: boolean; containers: Container[]; volumes?: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[]; terminationGracePeriodSeconds?: number }
interface Workload { selector: { matchLabels: Record<string, string> }; replicas?: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }

test('deploy kubernetes - kubectl kustomize builds the manifests', (t) => {
  const kubectl = tool('kubectl');
  if (!kubectl) { t.skip('kubectl is not installed'); return; }
  const r = spawnSync(kubectl, ['kustomize', join(DEPLOY, 'kubernetes')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const kinds = parseAllDocuments(r.stdout).map((d) => (d.toJS() as K8sObject).kind).sort();
  assert.deepEqual(kinds, ['ConfigMap', 'ConfigMap', 'DaemonSet', 'Deployment', 'Namespace', 'PodDisruptionBudget']);
});

test('deploy kubernetes - a DaemonSet of host runners with what MPS and pacing need, two fleet actors, probes on the health port, a valid workloads file', async () => {
  const objs = manifests();
  for (const o of objs) {
    assert.match(o.apiVersion, /^(v1|apps\/v1|policy\/v1)$/, `${o.kind} ${o.metadata.name}: a current API version`);
    assert.ok(o.metadata.name, 'named');
    if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'gpucolo', `${o.kind} ${o.metadata.name}: in the gpucolo namespace`);
  }
  const find = (kind: string, name: string) => { const o = objs.find((x) => x.kind === kind && x.metadata.name === name); assert.ok(o, `${kind} ${name}`); return o; };
  const env = find('ConfigMap', 'gpucolo-env').data!;
  const metricsPort = Number(env.OTEL_EXPORTER_PROMETHEUS_PORT);
  assert.equal(env.OTEL_METRICS_EXPORTER, 'prometheus');

  const checkPod = (w: Workload, what: string) => {
    assert.deepEqual(w.selector.matchLabels, Object.fromEntries(Object.keys(w.selector.matchLabels).map((k) => [k, w.template.metadata.labels[k]])), `${what}: the selector matches the pod labels`);
    const c = w.template.spec.containers[0]!;
    const line = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
    const health = Number(/--health-port (\d+)/.exec(line)?.[1]);
    const port = (name: string) => c.ports.find((p) => p.name === name)?.containerPort;
    assert.equal(port('health'), health, `${what}: the health port is the one --health-port serves`);
    assert.equal(port('metrics'), metricsPort, `${what}: the metrics port is OTEL_EXPORTER_PROMETHEUS_PORT`);
    assert.deepEqual([c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ['/readyz', 'health']);
    assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port], ['/healthz', 'health']);
    assert.ok(c.envFrom?.some((e) => e.configMapRef?.name === 'gpucolo-env'), `${what}: reads gpucolo-env`);
    assert.ok(c.envFrom?.some((e) => e.secretRef?.name === 'gpucolo-nats'), `${what}: reads the NATS credentials`);
    assert.ok((w.template.spec.terminationGracePeriodSeconds ?? 30) >= 60, `${what}: time to release training before SIGKILL`);
    return { c, line };
  };

  // Host runners: hostIPC for MPS, the state folder (MPS pipes, leases, paused-process record) on the host.
  const ds = find('DaemonSet', 'gpucolo-host').spec as unknown as Workload;
  const { c: host, line: hostLine } = checkPod(ds, 'DaemonSet');
  assert.equal(ds.template.spec.hostIPC, true, 'MPS clients and server share host IPC');
  assert.match(hostLine, /exec gpucolo host /);
  await assertFlagsExist('host', hostLine.slice(hostLine.indexOf('gpucolo host') + 'gpucolo host'.length), 'DaemonSet');
  const stateDir = /--state-dir (\S+)/.exec(hostLine)?.[1];
  const stateMount = host.volumeMounts?.find((m) => stateDir?.startsWith(`${m.mountPath}/`));
  assert.ok(stateMount, `--state-dir ${stateDir} is on a mounted volume`);
  assert.ok(ds.template.spec.volumes?.find((v) => v.name === stateMount.name)?.hostPath, 'the state folder is a hostPath: it outlives the container');
  assert.deepEqual(host.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef, { fieldPath: 'spec.nodeName' });
  assert.equal(host.env?.find((e) => e.name === 'NVIDIA_DRIVER_CAPABILITIES')?.value, 'compute,utility', 'nvidia-smi and the MPS binaries');
  // The host id the shell derives from a node name is one gpucolo accepts.
  const derivation = /--host-id "(\$\(.*?\))"/.exec(hostLine)?.[1];
  assert.ok(derivation, 'the host id comes from the node name');
  for (const [node, id] of [['ip-10-0-3-17.eu-west-1.compute.internal', 'ip-10-0-3-17-eu-west-1-compute-internal'], ['gpu-node-7', 'gpu-node-7'], ['x'.repeat(80), 'x'.repeat(64)]] as const) {
    const derive: { stdout: string } = spawnSync('sh', ['-c', `printf %s "${derivation}"`], { env: { PATH: process.env.PATH, NODE_NAME: node }, encoding: 'utf8' });
    assert.equal(derive.stdout, id);
    assert.equal(assertId('host', derive.stdout), id);
  }
  // Its workloads file, mounted where --workloads points, passes the real loader's schema.
  const workloadsPath = /--workloads (\S+)/.exec(hostLine)?.[1];
  const wlMount = host.volumeMounts?.find((m) => workloadsPath?.startsWith(`${m.mountPath}/`));
  assert.ok(wlMount, `--workloads ${workloadsPath} is mounted`);
  const cmName = ds.template.spec.volumes?.find((v) => v.name === wlMount.name)?.configMap?.name;
  const wl = find('ConfigMap', cmName!).data![workloadsPath!.slice(wlMount.mountPath.length + 1)]!;
  const parsed = parseNvidiaWorkloads(parseYaml(wl), 'gpucolo-workloads');
  assert.ok(parsed.gpus.length >= 1);

  // Fleet: two replicas with distinct ids (the pod name), so one leads through the lease and one stands by.
  const dep = find('Deployment', 'gpucolo-fleet').spec as unknown as Workload;
  assert.equal(dep.replicas, 2);
  const { c: fleet, line: fleetLine } = checkPod(dep, 'Deployment');
  assert.match(fleetLine, /^fleet --fleet-id \$\(POD_NAME\) /);
  await assertFlagsExist('fleet', fleetLine.slice('fleet'.length), 'Deployment');
  assert.deepEqual(fleet.env?.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef, { fieldPath: 'metadata.name' });
  const pdb = find('PodDisruptionBudget', 'gpucolo-fleet').spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
  assert.equal(pdb.minAvailable, 1);
  assert.deepEqual(pdb.selector.matchLabels, dep.selector.matchLabels);

  // NATS: the official chart's values for a 3-node JetStream cluster with persistent storage.
  const nats = parseYaml(read('kubernetes', 'nats-values.yaml')) as { config: { cluster: { enabled: boolean; replicas: number }; jetstream: { enabled: boolean; fileStore: { pvc: { enabled: boolean } } } } };
  assert.deepEqual([nats.config.cluster.enabled, nats.config.cluster.replicas, nats.config.jetstream.enabled, nats.config.jetstream.fileStore.pvc.enabled], [true, 3, true, true]);
  assert.match(env.NATS_URL!, /^nats:\/\/nats\.gpucolo\.svc/, 'the runners reach the chart\'s service (release "nats")');
});

test('deploy container - the recipe installs the npm pack package; laid out as it installs it, the linked CLI runs', (t) => {
  const text = read('container', 'Containerfile');
  assert.match(text, /^ARG PACKAGE$/m);
  assert.match(text, /^COPY \$\{PACKAGE\} \/tmp\/gpucolo\.tgz$/m);
  assert.match(text, /npm install --global --omit=dev [^\n]*\/tmp\/gpucolo\.tgz/);
  assert.match(text, /^FROM \$\{NODE_IMAGE\}$/m);
  assert.match(text, /^ARG NODE_IMAGE=docker\.io\/library\/node:20-/m, 'the Node the package supports (engines: >=20)');
  assert.match(text, /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "gpucolo"\]$/m);
  assert.match(text, /^USER node$/m);
  const link = /ln -s \.\.\/lib\/node_modules\/gpucolo\/(\S+) \/usr\/local\/bin\/gpucolo/.exec(text);
  assert.ok(link, 'gpucolo on PATH');
  const npm = tool('npm');
  if (!npm) { t.skip('npm is not installed: the package was not built'); return; }
  // The package `npm pack` makes, laid out as the image's `npm install --global` does, run through the
  // image's relative link (this checkout's node_modules stand in for the production install).
  const dir = mkdtempSync(join(tmpdir(), 'gpucolo-pack-'));
  const r = spawnSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const packed = (JSON.parse(r.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  const files = new Set(packed.files.map((f) => f.path));
  for (const f of [link[1]!, 'package.json', 'cli/cli.ts', 'workloads/gpucolo_hook.py']) assert.ok(files.has(f), `the package holds ${f}`);
  const pkgDir = join(dir, 'lib', 'node_modules', 'gpucolo');
  mkdirSync(pkgDir, { recursive: true });
  mkdirSync(join(dir, 'bin'));
  const untar = spawnSync('tar', ['-xzf', join(dir, packed.filename), '-C', pkgDir, '--strip-components=1'], { encoding: 'utf8' });
  assert.equal(untar.status, 0, untar.stderr);
  symlinkSync(join(ROOT, 'node_modules'), join(pkgDir, 'node_modules'));
  symlinkSync(`../lib/node_modules/gpucolo/${link[1]}`, join(dir, 'bin', 'gpucolo'));
  const run = spawnSync(join(dir, 'bin', 'gpucolo'), ['fleet', '--help'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /--health-port/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  assert.equal(pkg.bin.gpucolo, link[1], 'the image links the package\'s own bin');
});
