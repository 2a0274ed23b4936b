import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadProfile } from '../../../gpu/model/index.ts';
import { WorkloadsFileError } from '../../../runners/host/index.ts';
import { loadWorkloads } from '../../../runners/host/workloads.ts';

const perGpu = { services: [{ id: 'svc', sloMs: 25, batch: 2, rateRps: 100 }], trainings: [{ id: 'job' }] };

test('workloads - profile is a built-in name or a profile file relative to the workloads file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gc-workloads-'));
  try {
    mkdirSync(join(dir, 'profiles'));
    writeFileSync(join(dir, 'profiles', 'lab.json'), JSON.stringify({ ...loadProfile('rtx3090-resnet50-wrn101'), name: 'lab-3090' }));
    const file = join(dir, 'workloads.json');
    writeFileSync(file, JSON.stringify({ profile: 'profiles/lab.json', perGpu }));
    const w = loadWorkloads(file);
    assert.equal(w.profile, join(dir, 'profiles', 'lab.json'), 'resolved against the workloads file\'s folder');
    assert.equal(loadProfile(w.profile!).name, 'lab-3090');

    writeFileSync(file, JSON.stringify({ profile: 'rtx3090-resnet50-wrn101-heavytail', perGpu }));
    assert.equal(loadWorkloads(file).profile, 'rtx3090-resnet50-wrn101-heavytail');

    writeFileSync(file, JSON.stringify({ profile: 'rtx4090', perGpu }));
    assert.throws(() => loadWorkloads(file), (e: unknown) => e instanceof WorkloadsFileError && /profile: unknown GPU model profile "rtx4090"; built-in profiles: .*rtx3090-resnet50-wrn101/.test(e.message));

    writeFileSync(join(dir, 'profiles', 'bad.json'), JSON.stringify({ ...loadProfile('rtx3090-resnet50-wrn101'), mpsRestartMs: -1 }));
    writeFileSync(file, JSON.stringify({ profile: 'profiles/bad.json', perGpu }));
    assert.throws(() => loadWorkloads(file), (e: unknown) => e instanceof WorkloadsFileError && e.message.includes(`workloads file ${file}: profile: profile file ${join(dir, 'profiles', 'bad.json')}: invalid field /mpsRestartMs`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
