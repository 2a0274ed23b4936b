import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  Bus, BusAuthError, BusUnavailableError, GpuStateStore, STATE_BUCKET, decode, encode, type BusAuth,
} from '../../bus/index.ts';
import { SCHEMA_VERSION, subjects, type GpuStatusEvent } from '../../schemas/index.ts';
import { cleanEnv, ROOT, startCli, type CliProcess } from '../faults/helpers.ts';
import { useNats } from '../support/nats.ts';
import { sleep, until } from '../support/wait.ts';
import { hasOpenssl, makeTestPki, type TestPki } from './tls.ts';

// The repo's example configuration, as shipped: accounts, per-host users, TLS with client certificates.
// Without openssl (no certificates to make) the same accounts file is served without TLS.
const CONFIG = join(ROOT, 'deploy', 'nats', 'gpucolo.conf');
const ACCOUNTS = join(ROOT, 'deploy', 'nats', 'accounts.conf');
const withTls = hasOpenssl();
// nats-server parses a variable's value as a config value: hex such as "2e4f..." would read as a number
// and fail to parse, so every password starts with letters (deploy/nats/gpucolo.conf says the same).
const password = () => `pw${randomBytes(12).toString('hex')}`;
const passwords = { fleet: password(), observer: password(), 'host-a': password(), 'host-b': password() };

let pki: TestPki | undefined;
let url: string;
useNats(() => {
  pki = withTls ? makeTestPki() : undefined;
  let configFile = CONFIG;
  if (!pki) {
    const dir = mkdtempSync(join(tmpdir(), 'gc-noTLS-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    configFile = join(dir, 'plain.conf');
    writeFileSync(configFile, `include ${JSON.stringify(ACCOUNTS)}\n`);
  }
  return {
    configFile,
    env: {
      GPUCOLO_FLEET_PASSWORD: passwords.fleet, GPUCOLO_OBSERVER_PASSWORD: passwords.observer,
      GPUCOLO_HOST_A_PASSWORD: passwords['host-a'], GPUCOLO_HOST_B_PASSWORD: passwords['host-b'],
      ...(pki ? { GPUCOLO_TLS_CERT: pki.serverCert, GPUCOLO_TLS_KEY: pki.serverKey, GPUCOLO_TLS_CA: pki.caFile } : {}),
    },
  };
}, (server) => { url = `${pki ? 'tls' : 'nats'}://127.0.0.1:${server.port}`; });

function authFor(user: keyof typeof passwords): BusAuth {
  return {
    user, password: passwords[user],
    ...(pki ? { tlsCaFile: pki.caFile, tlsCertFile: pki.clientCert, tlsKeyFile: pki.clientKey } : {}),
  };
}

/** A plain client as a user, collecting the errors the server sends it (permission violations). */
async function rawAs(user: keyof typeof passwords): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await connect({
    servers: url, user, pass: passwords[user], inboxPrefix: `_INBOX.${user}`,
    ...(pki ? { tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey } } : {}),
  });
  const errors: string[] = [];
  void (async () => { for await (const s of nc.status()) if (s.type === 'error') errors.push(s.error.message); })();
  return { nc, errors };
}

test(`access - example config${withTls ? ' over mutual TLS' : ' (no openssl: without TLS)'}: a host runs fenced to its own subjects; another host cannot command its GPUs, write its state or speak as it or as the fleet`, async (t) => {
  if (!pki) t.diagnostic('openssl not found: the accounts and permissions are tested without TLS');
  const observer = await rawAs('observer');
  const statuses: GpuStatusEvent[] = [];
  const seen: string[] = [];
  observer.nc.subscribe('colo.v1.evt.>', {
    callback: (_e, m) => {
      seen.push(m.subject);
      const ev = decode(m.data) as { type: string };
      if (ev.type === 'gpu.status') statuses.push(ev as GpuStatusEvent);
    },
  });
  await observer.nc.flush();

  // host-b: a real runner process, credentials and TLS from the command line (password from the environment).
  const tlsFlags = pki ? ['--tls-ca', pki.caFile, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey] : [];
  const runner: CliProcess = startCli(['host', '--host-id', 'host-b', '--backend', 'sim:1', '--speed', '5', '--nats-url', url, '--user', 'host-b', ...tlsFlags],
    cleanEnv({ NATS_PASSWORD: passwords['host-b'] }));
  const fromB = () => statuses.filter((s) => s.host === 'host-b');
  const attacker = await rawAs('host-a');
  const fleet = await Bus.connect({ url, name: 'fleet', host: 'fleet', auth: authFor('fleet') });
  try {
    await until(() => fromB().length >= 3, 30_000, () => `host-b's status\n${runner.stderr()}`);
    // Its own permissions are enough for a runner: events stream, KV state, its own commands.
    const { store } = await GpuStateStore.open(fleet);
    for (let i = 0; !(await store!.load('host-b', 'gpu0')); i++) {
      assert.ok(i < 100, `host-b saved its state in KV\n${runner.stderr()}`);
      await sleep(50);
    }
    const stored = await store!.load('host-b', 'gpu0');
    const sloBefore = fromB().at(-1)!.services[0]!.sloMs;

    // host-a tries to command host-b's GPU, its training job and its inference service: no reply, nothing changes.
    const cmd = (type: string, extra: Record<string, unknown>) => encode({ v: SCHEMA_VERSION, type, id: randomBytes(6).toString('hex'), deadlineUnixMs: Date.now() + 60_000, ...extra });
    const attempts = [
      attacker.nc.request(subjects.gpuCommand('host-b', 'gpu0'), cmd('gpu.command', { action: 'set-slo', sloMs: 1 }), { timeout: 700 }),
      attacker.nc.request(subjects.trainingCommand('host-b', 'gpu0', 'wrn101'), cmd('training.command', { action: 'set-running', running: false }), { timeout: 700 }),
      attacker.nc.request(subjects.inferenceCommand('host-b', 'gpu0', 'resnet50'), cmd('inference.command', { action: 'set-rate', rateRps: 0 }), { timeout: 700 }),
    ];
    const outcomes = await Promise.allSettled(attempts);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected'], 'no command of host-a reached host-b');
    // Nor can it listen to host-b's commands, write host-b's KV state, or publish as host-b or as the fleet.
    const sniffed: string[] = [];
    const subErrors: string[] = [];
    attacker.nc.subscribe('colo.v1.host-b.>', { callback: (e, m) => { if (e) subErrors.push(e.message); else sniffed.push(m.subject); } });
    attacker.nc.publish(subjects.gpuStatus('host-b', 'gpu0'), encode({ ...fromB().at(-1)!, state: 'forged' }));
    attacker.nc.publish(subjects.hostLifecycle('host-b'), encode({ v: SCHEMA_VERSION, type: 'host.lifecycle', host: 'host-b', unixMs: Date.now(), state: 'stopped', gpus: [], backend: 'forged', pid: 1 }));
    attacker.nc.publish('colo.v1.evt.fleet.plan', encode({ v: SCHEMA_VERSION, type: 'fleet.plan', forged: true }));
    attacker.nc.publish(`colo.v1.host-b.gpu0.placement`, encode({ v: SCHEMA_VERSION, type: 'placement.command', forged: true }));
    const kvAsA = await new Kvm(attacker.nc).open(STATE_BUCKET);
    await assert.rejects(kvAsA.put('host-b.gpu0', encode({ forged: true }), { timeout: 700 } as never), 'host-a cannot write host-b\'s state');
    await attacker.nc.flush();
    // Meanwhile the fleet user does command host-b: the fence is per user, not a broken bus.
    const byFleet = await fleet.request<'gpu.command'>(subjects.gpuCommand('host-b', 'gpu0'), { type: 'gpu.command', action: 'set-slo', sloMs: sloBefore + 4 });
    assert.equal(byFleet.ok, true, JSON.stringify(byFleet));
    await until(() => fromB().at(-1)!.services[0]!.sloMs === sloBefore + 4, 10_000, 'the fleet\'s SLO in force on host-b');

    assert.deepEqual(sniffed, [], 'host-a heard none of host-b\'s commands');
    assert.match(subErrors.join(' | '), /permissions violation/i, 'its subscription was refused');
    assert.equal(statuses.some((s) => s.state === 'forged'), false, 'no forged status reached a watcher');
    assert.equal(seen.includes('colo.v1.evt.fleet.plan'), false, 'no forged fleet event reached a watcher');
    assert.equal(seen.filter((s) => s === subjects.hostLifecycle('host-b')).length, 1, 'only host-b\'s own start announcement');
    assert.ok(fromB().every((s) => s.services[0]!.sloMs !== 1), 'host-a\'s set-slo never applied');
    assert.equal(fromB().at(-1)!.trainingRunning !== undefined, true);
    const after = await store!.load('host-b', 'gpu0');
    assert.ok(after && after.revision >= stored!.revision && after.record.host === 'host-b', 'host-b\'s stored state is its own');
    const violations = attacker.errors.filter((e) => /permissions violation/i.test(e));
    assert.ok(violations.some((e) => /publish to "colo\.v1\.host-b\.gpu0\.cmd"/i.test(e)), `the server refused host-a's publish: ${attacker.errors.join(' | ')}`);
    assert.ok(violations.some((e) => /subscription to "colo\.v1\.host-b\.>"/i.test(e)), `and its subscription: ${attacker.errors.join(' | ')}`);
    assert.ok(violations.some((e) => /colo\.v1\.evt\.fleet\.plan/.test(e)), 'and its fleet impersonation');
    assert.doesNotMatch(runner.stderr(), /permissions violation|state: cannot|not kept for replay|does not survive/i, 'host-b needed nothing beyond its own permissions');
    t.diagnostic(`server refused ${violations.length} operations of host-a: ${violations.map((v) => v.replace(/^.*?(Publish|Subscription)/i, '$1')).join('; ')}`);
  } finally {
    runner.child.kill('SIGTERM');
    await runner.exited;
    await attacker.nc.close();
    await observer.nc.close();
    await fleet.close();
  }
});

test('access - wrong password, no client certificate, an untrusted certificate, or a half-given setting: refused with a clear error', async () => {
  await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { ...authFor('host-a'), password: 'wrong' } }),
    (err: Error) => err instanceof BusUnavailableError && /as|user host-a/.test(err.message) && /authorization/i.test(err.message));
  if (pki) {
    await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { user: 'host-a', password: passwords['host-a'], tlsCaFile: pki.caFile }, connectTimeoutMs: 1500 }),
      (err: Error) => err instanceof BusUnavailableError && /check the CA and the client certificate/.test(err.message), 'no client certificate');
    await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { ...authFor('host-a'), tlsCertFile: pki.strangerCert, tlsKeyFile: pki.strangerKey }, connectTimeoutMs: 1500 }),
      (err: Error) => err instanceof BusUnavailableError && /check the CA and the client certificate/.test(err.message), 'a certificate from another CA');
  }
  await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { user: 'host-a' } }), (err: Error) => err instanceof BusAuthError && /needs a password/.test(err.message));
  await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { credsFile: '/no/such.creds' } }), (err: Error) => err instanceof BusAuthError && /\/no\/such\.creds cannot be read/.test(err.message));
  await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { user: 'a', password: 'b', token: 'c' } }), (err: Error) => err instanceof BusAuthError && /one NATS identity/.test(err.message));
  // The CLI says the same and exits non-zero.
  const tlsFlags = pki ? ['--tls-ca', pki.caFile, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey] : [];
  const cli = startCli(['events', '--count', '1', '--nats-url', url, '--user', 'observer', ...tlsFlags], cleanEnv({ NATS_PASSWORD: 'wrong' }));
  assert.equal(await cli.exited, 1);
  assert.match(cli.stderr(), /gpucolo: cannot connect to NATS at .* \(user observer.*\): .*authorization/i);
});

test('access - example config: each user reads only its own replies; host-a cannot read the replies meant for host-b or the fleet', async () => {
  const hostB = await Bus.connect({ url, name: 'host-b', host: 'host-b', auth: authFor('host-b') });
  const fleet = await Bus.connect({ url, name: 'fleet', host: 'fleet', auth: authFor('fleet') });
  const attacker = await rawAs('host-a');
  try {
    assert.equal(hostB.inboxPrefix, '_INBOX.host-b');
    assert.equal(fleet.inboxPrefix, '_INBOX.fleet');
    hostB.serve<'gpu.command'>(subjects.gpuCommand('host-b', 'gpu9'), () => ({ ok: true, state: { secret: 'for host-b and the fleet only' } }));
    await hostB.nc.flush();
    // host-a listens for every reply it can: the server refuses each subscription.
    const sniffed: string[] = [];
    for (const pattern of ['_INBOX.>', '_INBOX.host-b.>', '_INBOX.fleet.>', '>']) {
      attacker.nc.subscribe(pattern, { callback: (e, m) => { if (!e) sniffed.push(`${pattern}: ${m.subject}`); } });
    }
    await attacker.nc.flush();
    await sleep(200);
    // host-b's own request and the fleet's request to host-b are answered...
    const own = await hostB.request<'gpu.command'>(subjects.gpuCommand('host-b', 'gpu9'), { type: 'gpu.command', action: 'get-state' });
    const byFleet = await fleet.request<'gpu.command'>(subjects.gpuCommand('host-b', 'gpu9'), { type: 'gpu.command', action: 'get-state' });
    assert.equal(own.ok && byFleet.ok, true);
    await attacker.nc.flush();
    await sleep(200);
    // ...and host-a saw none of those replies.
    assert.deepEqual(sniffed, []);
    const refused = attacker.errors.filter((e) => /permissions violation for subscription/i.test(e));
    for (const pattern of ['_INBOX.>', '_INBOX.host-b.>', '_INBOX.fleet.>']) {
      assert.ok(refused.some((e) => e.includes(`"${pattern}"`)), `subscription to ${pattern} refused: ${attacker.errors.join(' | ')}`);
    }
    // host-a's own replies still reach it, under its own prefix.
    attacker.nc.subscribe('colo.v1.host-a.echo', { callback: (_e, m) => { m.respond(m.data); } });
    const echo = await attacker.nc.request('colo.v1.host-a.echo', 'ping', { timeout: 2000 });
    assert.equal(new TextDecoder().decode(echo.data), 'ping');
  } finally {
    await attacker.nc.close();
    await hostB.close();
    await fleet.close();
  }
});
