import assert from 'node:assert/strict';
import { test } from 'node:test';
import { context } from '@opentelemetry/api';
import { Bus } from '../../../bus/index.ts';
import type { Knobs } from '../../../control/index.ts';
import { actuateJob } from '../../../runners/host/actuation.ts';
import { subjects } from '../../../schemas/index.ts';
import { useNats } from '../../support/nats.ts';

const nats = useNats();

test('runners - host actuation: a job resumed at a new share gets the share before it starts; a job stopped stops first', async () => {
  const bus = await Bus.connect({ url: nats.url, name: 'act', host: 'h1' });
  const seen: string[] = [];
  const sub = bus.serve<'training.command'>(subjects.trainingCommand('h1', 'g0', 'j1'), ({ message: m }) => {
    seen.push(m.action === 'set-running' ? `running=${m.running}` : m.action === 'set-mps-share' ? `share=${m.mpsSharePct}` : m.action);
    return { ok: true };
  });
  try {
    const pacing = { mode: 'duty' as const, duty: 0.95, periodMs: 1000 };
    const stopped: Knobs = { mpsSharePct: 15, pacing, trainingRunning: false };
    await actuateJob(bus, 'h1', 'g0', 'j1', stopped, { ...stopped, mpsSharePct: 5, trainingRunning: true }, context.active(), () => {});
    assert.deepEqual(seen, ['share=5', 'running=true'], 'the resume: share, then start');
    seen.length = 0;
    const running: Knobs = { ...stopped, trainingRunning: true };
    await actuateJob(bus, 'h1', 'g0', 'j1', running, { ...running, mpsSharePct: 5, trainingRunning: false }, context.active(), () => {});
    assert.deepEqual(seen, ['running=false', 'share=5'], 'the stop: stop, then share');
  } finally {
    sub.unsubscribe();
    await bus.close();
  }
});
