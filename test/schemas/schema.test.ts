import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { MESSAGE_SCHEMAS, subjectMatches, subjects, typeForSubject } from '../../schemas/index.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');

test('schema - gpucolo schema --out writes one 2020-12 schema per message type and an index of subjects', () => {
  const out = mkdtempSync(join(tmpdir(), 'gpucolo-schema-'));
  execFileSync(process.execPath, [BIN, 'schema', '--out', out], { encoding: 'utf8' });
  const files = readdirSync(out).sort();
  assert.equal(files.length, Object.keys(MESSAGE_SCHEMAS).length + 1);
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as Record<string, string>;
  const ajv = new Ajv2020.default({ strict: false });
  for (const file of files.filter((f) => f !== 'index.json')) {
    const schema = JSON.parse(readFileSync(join(out, file), 'utf8'));
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    ajv.compile(schema); // throws if not a valid 2020-12 schema
  }
  // Every subject the runtime uses is covered by exactly one pattern, and every file it names exists.
  const used = [
    subjects.inferenceWindow('h', 'g', 's'), subjects.inferenceCommand('h', 'g', 's'), subjects.trainingProgress('h', 'g', 'j'),
    subjects.trainingCommand('h', 'g', 'j'), subjects.gpuCommand('h', 'g'), subjects.gpuStatus('h', 'g'), subjects.gpuDecision('h', 'g'),
    subjects.gpuSafety('h', 'g'), subjects.busRejected('h'), subjects.hostLifecycle('h'),
  ];
  for (const s of used) {
    const hits = Object.keys(index).filter((p) => subjectMatches(p, s));
    assert.equal(hits.length, 1, `${s} matches ${hits.join(', ')}`);
    assert.ok(files.includes(index[hits[0]!]!));
  }
  assert.equal(typeForSubject('colo.v1.h.g.unknown'), undefined);
});

test('schema - subject patterns: * is one token, > the rest', () => {
  assert.ok(subjectMatches('colo.v1.*.*.cmd', 'colo.v1.h.g.cmd'));
  assert.ok(!subjectMatches('colo.v1.*.*.cmd', 'colo.v1.h.g.x.cmd'));
  assert.ok(subjectMatches('colo.v1.evt.>', 'colo.v1.evt.h.g.status'));
  assert.ok(!subjectMatches('colo.v1.evt.>', 'colo.v1.evt'));
});

test('schema - bad flags exit 2 with a message saying what to fix', () => {
  let err: { status: number; stderr: string } | undefined;
  try {
    execFileSync(process.execPath, [BIN, 'demo', '--speed', 'fast'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    err = e as { status: number; stderr: string };
  }
  assert.equal(err?.status, 2);
  assert.match(err!.stderr, /--speed must be a number, got "fast"/);
});
