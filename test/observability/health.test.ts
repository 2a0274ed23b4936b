import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startNats } from '../support/nats.ts';
import { waitFor } from '../support/wait.ts';
import { runCli } from './helpers.ts';
import { startCli } from './scrape.ts';

async function get(url: string, method = 'GET'): Promise<{ status: number; body: { status?: string; checks?: Record<string, string> } }> {
  const r = await fetch(url, { method });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : {} };
}

/** GETs `url` every 100 ms (20 s at most) until it answers `status`; an error (not listening yet) is not yet. */
const getUntil = (what: string, url: string, status: number) =>
  waitFor(() => get(url).then((r) => (r.status === status ? r : undefined), () => undefined), 20_000, what, 100);

test('health - host runner: /healthz while alive, /readyz ready with NATS and its GPU actors, not ready when NATS goes', async () => {
  const nats = await startNats();
  const host = startCli(['host', '--host-id', 'hz', '--backend', 'sim:2', '--speed', '10', '--health-port', '127.0.0.1:0'], { NATS_URL: nats.url, OTEL_METRICS_EXPORTER: 'none' });
  try {
    const base = (await host.waitFor(/health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/))[1]!;
    const ready = await getUntil('ready', `${base}/readyz`, 200);
    assert.deepEqual(ready.body, { status: 'ready', checks: { nats: 'ok', actors: 'ok' } });
    assert.equal((await get(`${base}/healthz`)).status, 200);
    assert.equal((await get(`${base}/readyz`, 'HEAD')).status, 200);
    assert.equal((await get(`${base}/metrics`)).status, 404);

    await nats.stop();
    const lost = await getUntil('not ready without NATS', `${base}/readyz`, 503);
    assert.match(String(lost.body.checks?.nats), /^(no round trip to the NATS server: .+|no answer within 1000 ms)$/);
    assert.equal(lost.body.checks?.actors, 'ok', 'the GPU actors keep running (at their safe setting)');
    assert.equal((await get(`${base}/healthz`)).status, 200, 'alive: a restart would not bring NATS back');
  } finally {
    host.child.kill('SIGTERM');
    await host.exited;
    await nats.stop();
  }
});

test('health - fleet runner: ready while connected and its actor runs, leading or standing by; its port closes when it stops', async () => {
  const nats = await startNats();
  const fleets = ['fz1', 'fz2'].map((id) => startCli(['fleet', '--fleet-id', id, '--health-port', '127.0.0.1:0'], { NATS_URL: nats.url, OTEL_METRICS_EXPORTER: 'none' }));
  try {
    const bases = await Promise.all(fleets.map(async (f) => (await f.waitFor(/health: (http:\/\/127\.0\.0\.1:\d+)\/healthz/))[1]!));
    for (const base of bases) {
      const r = await getUntil('ready', `${base}/readyz`, 200);
      assert.deepEqual(r.body.checks, { nats: 'ok', actors: 'ok' });
    }
    // SIGINT, then SIGTERM while it stops: one stop, to the end.
    fleets[0]!.child.kill('SIGINT');
    await fleets[0]!.waitFor(/stopping \(SIGINT\)/);
    fleets[0]!.child.kill('SIGTERM');
    assert.equal(await fleets[0]!.exited, 0, fleets[0]!.stderr().slice(-2000));
    assert.equal(fleets[0]!.stderr().match(/stopping \(/g)?.length, 1, 'one stop');
    await assert.rejects(fetch(`${bases[0]}/healthz`), 'the health port closes with the process');
    assert.equal((await get(`${bases[1]}/readyz`)).status, 200, 'the standby stays ready');
  } finally {
    for (const f of fleets) if (f.child.exitCode === null) f.child.kill('SIGTERM');
    await Promise.all(fleets.map((f) => f.exited));
    await nats.stop();
  }
});

test('health - a bad or taken --health-port exits non-zero with a clear message', async () => {
  const bad = await runCli(['host', '--host-id', 'hb', '--backend', 'sim:1', '--health-port', 'abc']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--health-port must be PORT or HOST:PORT/);
  const big = await runCli(['fleet', '--fleet-id', 'fb', '--health-port', '70000']);
  assert.equal(big.code, 2);
  assert.match(big.stderr, /--health-port must be PORT or HOST:PORT with PORT 0-65535, got "70000"/);

  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as { port: number }).port;
  try {
    const run = await runCli(['host', '--host-id', 'ht', '--backend', 'sim:1', '--health-port', `127.0.0.1:${port}`], { OTEL_METRICS_EXPORTER: 'none' });
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`--health-port: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`));
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  } finally {
    taken.close();
  }
});
