import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { encode as encodeIndependent } from '@msgpack/msgpack';
import { connect } from '@nats-io/transport-node';
import { Bus } from '../../bus/index.ts';
import { isPublishedEvent, MESSAGE_SCHEMAS, schemaFileName, SCHEMA_VERSION, subjects, validatorFor, type MessageType } from '../../schemas/index.ts';
import { useNats } from '../support/nats.ts';
import { until } from '../support/wait.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'gpucolo.mjs');
const header = (type: string) => ({ v: SCHEMA_VERSION, type });
const pacing = { mode: 'duty', duty: 0.2, periodMs: 50 };

/** One valid v1 message of each published event, as a consumer sees it today. */
const EVENTS: Record<string, Record<string, unknown>> = {
  'gpu.status': {
    ...header('gpu.status'), host: 'h', gpu: 'g', tMs: 1000, unixMs: 1, policy: 'gpucolo', state: 'controlling',
    services: [{ serviceId: 's', sloMs: 25, p99Ms: 9, meanMs: 5, rateRps: 100, runP99Ms: 9, sloWindows: 1, sloWindowsMet: 1 }],
    trainings: [{ jobId: 'j', itersPerSec: 1, iterations: 10, state: 'running' }],
    mpsSharePct: 15, pacing, trainingRunning: true, mpsChanges: 0, sleepChanges: 1,
  },
  'gpu.decision': { ...header('gpu.decision'), host: 'h', gpu: 'g', tMs: 1, unixMs: 1, policy: 'gpucolo', tier: 'inner', knob: 'pacing', oldValue: 0, newValue: 0.1, reason: 'r', terms: { a: 1 } },
  'gpu.safety': { ...header('gpu.safety'), host: 'h', gpu: 'g', tMs: 1, unixMs: 1, condition: 'telemetry-lost', detail: 'd' },
  'bus.rejected': { ...header('bus.rejected'), host: 'h', unixMs: 1, subject: 'x', reason: 'schema', detail: 'd', bytes: 1, rejectedTotal: 1 },
  'host.lifecycle': { ...header('host.lifecycle'), host: 'h', unixMs: 1, state: 'started', gpus: ['g'], backend: 'sim:1', pid: 1 },
  'fleet.plan': {
    ...header('fleet.plan'), fleetId: 'f', planId: 'p', unixMs: 1, gpusTotal: 2, gpusInUseBefore: 2, gpusInUse: 1, gpusFreed: 1,
    moves: [{ workload: 'service', id: 's', from: 'h/g0', to: 'h/g1', reason: 'consolidate' }], overloaded: [], unrelieved: [], planMs: 1,
  },
  'gpu.freed': { ...header('gpu.freed'), host: 'h', gpu: 'g', unixMs: 1, fleetId: 'f', planId: 'p', gpusFreed: 1 },
  'gpu.claimed': { ...header('gpu.claimed'), host: 'h', gpu: 'g', unixMs: 1, fleetId: 'f', planId: 'p', gpusFreed: 0 },
  'fleet.leader': { ...header('fleet.leader'), fleetId: 'f', unixMs: 1, state: 'leading', leaseRevision: 1 },
};

/** The same event as a later v1 producer might send it: a new field on every object, nested ones too. */
function withAdditions(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withAdditions);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = k === 'terms' ? v : withAdditions(v);
  out.addedWithinV1 = 'a field this consumer does not know';
  return out;
}

const server = useNats();

test('schema compatibility - a consumer validating with the written v1 schemas accepts events with fields added within v1', () => {
  const out = mkdtempSync(join(tmpdir(), 'gpucolo-compat-'));
  execFileSync(process.execPath, [BIN, 'schema', '--out', out], { encoding: 'utf8' });
  const ajv = new Ajv2020.default({ strict: false });
  const published = (Object.keys(MESSAGE_SCHEMAS) as MessageType[]).filter(isPublishedEvent);
  assert.deepEqual(published.sort(), Object.keys(EVENTS).sort(), 'every published event has a sample here');
  for (const type of published) {
    const validate = ajv.compile(JSON.parse(readFileSync(join(out, schemaFileName(type)), 'utf8')));
    assert.ok(validate(EVENTS[type]), `${type} today: ${JSON.stringify(validate.errors)}`);
    assert.ok(validate(withAdditions(EVENTS[type])), `${type} with additions: ${JSON.stringify(validate.errors)}`);
    // What stays a break: a required field gone, a type changed.
    const { unixMs: _gone, ...missing } = EVENTS[type]!;
    assert.equal(validate(missing), false, `${type} without a required field`);
    assert.equal(validate({ ...EVENTS[type], unixMs: 'yesterday' }), false, `${type} with a field retyped`);
  }
});

test('schema compatibility - what the daemon takes in stays closed: an unknown field in a command or telemetry is refused', () => {
  const inbound = (Object.keys(MESSAGE_SCHEMAS) as MessageType[]).filter((t) => !isPublishedEvent(t));
  assert.ok(inbound.includes('training.command') && inbound.includes('inference.window') && inbound.includes('placement.command'));
  const cmd = { ...header('training.command'), id: 'k', deadlineUnixMs: Date.now() + 1000, action: 'set-pacing', pacing };
  assert.ok(validatorFor('training.command').Check(cmd));
  assert.equal(validatorFor('training.command').Check({ ...cmd, extra: 1 }), false);
  assert.equal(validatorFor('training.command').Check({ ...cmd, pacing: { ...pacing, extra: 1 } }), false, 'nested objects too');
});

test('schema compatibility - the bus admits a newer v1 event, and hands its consumer only the fields it knows', async () => {
  const bus = await Bus.connect({ url: server.url, name: 'compat', host: 'compat' });
  const raw = await connect({ servers: server.url });
  try {
    const got: Record<string, unknown>[] = [];
    bus.subscribe(subjects.gpuStatus('h', 'g'), ({ message }) => { got.push(message as Record<string, unknown>); });
    await bus.nc.flush();
    raw.publish(subjects.gpuStatus('h', 'g'), encodeIndependent(withAdditions(EVENTS['gpu.status'])));
    await raw.flush();
    await until(() => got.length > 0 || bus.stats.rejected > 0, 3000, 'the event, admitted or rejected', 10);
    assert.equal(bus.stats.rejected, 0);
    assert.deepEqual(got[0], EVENTS['gpu.status'], 'admitted, with the unknown fields left out');
    // Publishing stays strict: we never send a field our own schema does not define.
    assert.throws(() => bus.publish(subjects.gpuStatus('h', 'g'), { ...EVENTS['gpu.status'], typo: 1 } as never), /fails its schema/);
  } finally {
    await raw.close();
    await bus.close();
  }
});
