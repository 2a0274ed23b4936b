import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RESTART, RestartTracker } from '../../gpu/nvidia/index.ts';

const failed = { code: 3, signal: null };

test('restart policy - on failure: backoff doubles up to its cap, gives up past the limit, a healthy run counts afresh', () => {
  const r = new RestartTracker({ ...DEFAULT_RESTART, backoffMs: 1000, maxBackoffMs: 3000, limit: 3, healthyRunMs: 60_000 });
  assert.deepEqual(r.onExit(failed, 10), { restart: true, delayMs: 1000, attempt: 1, limit: 3 });
  assert.deepEqual(r.onExit({ code: null, signal: 'SIGKILL' }, 10), { restart: true, delayMs: 2000, attempt: 2, limit: 3 });
  assert.deepEqual(r.onExit(failed, 10), { restart: true, delayMs: 3000, attempt: 3, limit: 3 });
  const gaveUp = r.onExit(failed, 10);
  assert.equal(gaveUp.restart, false);
  assert.match(gaveUp.restart ? '' : gaveUp.why, /failed 4 times in a row, past its restart limit of 3/);
  // A run of a minute or more was healthy: the next failure is the first of a new row.
  assert.deepEqual(r.onExit(failed, 60_000), { restart: true, delayMs: 1000, attempt: 1, limit: 3 });
});

test('restart policy - a clean exit is never relaunched, nor anything under `never`', () => {
  assert.equal(new RestartTracker().onExit({ code: 0, signal: null }, 10).restart, false);
  const never = new RestartTracker({ ...DEFAULT_RESTART, mode: 'never' }).onExit(failed, 10);
  assert.equal(never.restart, false);
  assert.match(never.restart ? '' : never.why, /never/);
});
