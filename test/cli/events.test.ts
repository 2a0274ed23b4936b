import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Bus, ensureEventsStream } from '../../bus/index.ts';
import { SCHEMA_VERSION, subjects } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');
const server = useNats({}, async (nats) => {
  const bus = await Bus.connect({ url: nats.url, name: 'events-test', host: 'evtest' });
  assert.equal((await ensureEventsStream(bus)).ok, true);
  for (let i = 0; i < 2000; i++) {
    bus.publish(subjects.hostLifecycle('rack1'), { v: SCHEMA_VERSION, type: 'host.lifecycle', host: 'rack1', unixMs: Date.now(), state: 'started', gpus: ['gpu0'], backend: 'sim:1', pid: 1000 + i });
  }
  await bus.nc.flush();
  await bus.close();
});

/** Runs `gpucolo ARGS`, keeps the first stdout line, then closes the pipe as `head -1` does. */
function firstLineThenClose(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; line: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NATS_URL: server.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let line = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!line && out.includes('\n')) {
        line = out.slice(0, out.indexOf('\n'));
        child.stdout.destroy();
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`gpucolo ${args.join(' ')} did not end\n${stderr}`)); }, 30_000);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, line, stderr }); });
  });
}

test('events - `--replay | head -1`: the first event, then a quiet end when the reader goes', async () => {
  for (const args of [['events', '--replay'], ['events', '--replay', '--json']]) {
    const r = await firstLineThenClose(args);
    assert.match(r.line, /rack1/);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|Error|at /, r.stderr);
  }
});
