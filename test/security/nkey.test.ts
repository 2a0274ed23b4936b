import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { Bus, BusUnavailableError } from '../../bus/index.ts';
import { SCHEMA_VERSION, subjects, type GpuStatusEvent } from '../../schemas/index.ts';
import { cleanEnv, startCli } from '../faults/helpers.ts';
import { useNats } from '../support/nats.ts';
import { until } from '../support/wait.ts';

// A nats-server that knows one user by its public nkey only: the client proves it holds the seed by signing
// the server's nonce. The seed file is what an operator hands a host (`--nkey FILE` / NATS_NKEY).
const dir = mkdtempSync(join(tmpdir(), 'gc-nkey-'));
const user = createUser();
const stranger = createUser();
const seedFile = join(dir, 'host.nk');
const strangerFile = join(dir, 'stranger.nk');
writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`, { mode: 0o600 });
writeFileSync(strangerFile, `${new TextDecoder().decode(stranger.getSeed())}\n`, { mode: 0o600 });

let url: string;
useNats(() => {
  const conf = join(dir, 'nkey.conf');
  writeFileSync(conf, `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
  return { configFile: conf };
}, (server) => { url = `nats://127.0.0.1:${server.port}`; });
// Registered after useNats: runs once the server has stopped.
after(() => { rmSync(dir, { recursive: true, force: true }); });

test('nkey - a user listed by public nkey connects with its seed file (Bus and the CLI through NATS_NKEY); another seed is refused', async () => {
  const bus = await Bus.connect({ url, name: 'nkey-host', host: 'nk', auth: { nkeySeedFile: seedFile } });
  try {
    // The CLI, given the seed through the environment, receives what the Bus publishes.
    const cli = startCli(['events', '--count', '1', '--json'], cleanEnv({ NATS_URL: url, NATS_NKEY: seedFile }));
    const status: GpuStatusEvent = {
      v: SCHEMA_VERSION, type: 'gpu.status', host: 'nk', gpu: 'gpu0', tMs: 1, unixMs: Date.now(), policy: 'gpucolo', state: 'controlling',
      services: [], trainings: [], mpsSharePct: 100, pacing: { mode: 'duty', duty: 0, periodMs: 50 }, trainingRunning: false, mpsChanges: 0, sleepChanges: 0,
    };
    let exited = false;
    void cli.exited.then(() => { exited = true; });
    // Publish until the CLI (which connects in its own time) has seen one.
    await until(() => { if (!exited) bus.publish(subjects.gpuStatus('nk', 'gpu0'), status); return exited; }, 15_000, 'the events CLI to print one event');
    assert.equal(await cli.exited, 0, cli.stderr());
    assert.match(cli.stdout(), /"gpu\.status"/);
  } finally {
    await bus.close();
  }
  await assert.rejects(Bus.connect({ url, name: 'x', host: 'x', auth: { nkeySeedFile: strangerFile }, connectTimeoutMs: 2000 }),
    (err: Error) => err instanceof BusUnavailableError && /authorization/i.test(err.message));
  const refused = startCli(['events', '--count', '1', '--nats-url', url, '--nkey', strangerFile], cleanEnv({}));
  assert.equal(await refused.exited, 1);
  assert.match(refused.stderr(), /gpucolo: cannot connect to NATS at .*authorization/i);
});
