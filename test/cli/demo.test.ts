import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from '@msgpack/msgpack';
import { connect } from '@nats-io/transport-node';
import Ajv2020 from 'ajv/dist/2020.js';
import { subjectMatches } from '../../schemas/registry.ts';
import { startNats } from '../support/nats.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');

test('demo - separate host processes, a burst, a JSON summary; its events validate against the written schemas', async () => {
  const schemaDir = mkdtempSync(join(tmpdir(), 'gpucolo-demo-schema-'));
  execFileSync(process.execPath, [BIN, 'schema', '--out', schemaDir]);
  const index = JSON.parse(readFileSync(join(schemaDir, 'index.json'), 'utf8')) as Record<string, string>;
  const ajv = new Ajv2020.default({ strict: false });
  const validators = new Map(Object.entries(index).map(([p, f]) => [p, ajv.compile(JSON.parse(readFileSync(join(schemaDir, f), 'utf8')))]));

  const server = await startNats();
  // An independent client: plain NATS, @msgpack/msgpack, ajv. Nothing of gpucolo's decoding.
  const nc = await connect({ servers: server.url });
  const counts: Record<string, number> = {};
  const invalid: string[] = [];
  nc.subscribe('colo.v1.evt.>', {
    callback: (_e, m) => {
      const pattern = [...validators.keys()].find((p) => subjectMatches(p, m.subject));
      const ev = decode(m.data) as { type: string };
      counts[ev.type] = (counts[ev.type] ?? 0) + 1;
      if (!pattern || !validators.get(pattern)!(ev)) invalid.push(`${m.subject}: ${JSON.stringify(validators.get(pattern ?? '')?.errors ?? 'no pattern')}`);
    },
  });
  await nc.flush();
  try {
    const child = spawn(process.execPath, [BIN, 'demo', '--hosts', '2', '--gpus', '1', '--duration', '120', '--speed', '10', '--json'], {
      env: { ...process.env, NATS_URL: server.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, 0, stderr.slice(-2000));
    const lines = stdout.trim().split('\n');
    const summary = JSON.parse(lines.at(-1)!) as { gpus: Array<Record<string, number | string | null>> };
    assert.equal(summary.gpus.length, 2);
    for (const g of summary.gpus) {
      assert.deepEqual(Object.keys(g).sort(), ['attainment', 'id', 'mpsChanges', 'p99Ms', 'servicesAtEnd', 'sleepChanges', 'sloMs', 'trainingItersPerSec']);
      assert.ok((g.trainingItersPerSec as number) > 0, `${g.id} trained`);
      // null only for a GPU that never served (the fleet may move a service away before its first window).
      assert.ok(g.attainment === null ? g.servicesAtEnd === 0 : (g.attainment as number) >= 0.99, `${g.id} attainment ${g.attainment}`);
    }
    assert.match(stderr, /inference burst/);
    assert.deepEqual(invalid, []);
    assert.ok((counts['gpu.status'] ?? 0) > 50 && (counts['host.lifecycle'] ?? 0) >= 4 && (counts['gpu.decision'] ?? 0) > 0, JSON.stringify(counts));
  } finally {
    await nc.close();
    await server.stop();
  }
});
