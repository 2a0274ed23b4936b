import { decode, encode } from '../../bus/index.ts';
import { Rng } from '../../gpu/model/index.ts';
import { typeForSubject, validatorFor } from '../../schemas/index.ts';

/** A small seeded PRNG (mulberry32): the same seed sends the same 10,000 payloads every run. */
export function rng(seed: number): () => number {
  const r = new Rng(seed); // the simulated GPU's generator (gpu/model)
  return () => r.next();
}

export type FuzzKind =
  | 'truncated' | 'wrong-type' | 'huge' | 'bad-number' | 'bad-knob' | 'unknown-version'
  | 'random-bytes' | 'bit-flip' | 'extra-field' | 'missing-field' | 'proto-key' | 'deep-nesting' | 'not-an-object';

export const FUZZ_KINDS: readonly FuzzKind[] = [
  'truncated', 'wrong-type', 'huge', 'bad-number', 'bad-knob', 'unknown-version',
  'random-bytes', 'bit-flip', 'extra-field', 'missing-field', 'proto-key', 'deep-nesting', 'not-an-object',
];

const WRONG_VALUES: unknown[] = ['x', '', true, false, null, [], [1, 2], { a: 1 }, -1, 1.5, 2 ** 53, new Uint8Array([1, 2])];
const BAD_NUMBERS: number[] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, -1e308];
/** Field -> values outside the schema's range (the knobs and the numbers that drive them). */
const OUT_OF_RANGE: Record<string, unknown[]> = {
  mpsSharePct: [0, 101, -5, 1e9, Number.NaN, 0.5],
  rateRps: [-1, Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY],
  scale: [-0.5, Number.NaN, Number.POSITIVE_INFINITY],
  batch: [0, -3, 1.5, Number.NaN, 1e300],
  sloMs: [0, -10, Number.NaN, Number.POSITIVE_INFINITY],
  running: [0, 1, 'false', null],
  pacing: [{ mode: 'duty', duty: 1.5, periodMs: 50 }, { mode: 'duty', duty: -0.1, periodMs: 50 }, { mode: 'duty', duty: Number.NaN, periodMs: 50 },
    { mode: 'duty', duty: 0.5, periodMs: 0 }, { mode: 'per-iteration', sleepMs: -1 }, { mode: 'per-iteration', sleepMs: Number.POSITIVE_INFINITY },
    { mode: 'sleep-forever' }, { mode: 'duty', duty: 1 }],
  p99Ms: [Number.NaN, Number.POSITIVE_INFINITY, 'slow'],
  count: [-1, 0.5, Number.NaN],
  tMs: [-1, Number.NaN],
  itersPerSec: [-1, Number.NaN],
  deadlineUnixMs: [Number.NaN, Number.POSITIVE_INFINITY, 'tomorrow'],
  id: ['', 'x'.repeat(129), 42],
  action: ['pause-forever', 'set-mps-share ', null],
};

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** True when bytes would pass the bus edge on this subject (decode, version and schema). */
export function wouldPass(subject: string, bytes: Uint8Array, maxPayloadBytes: number): boolean {
  if (bytes.length > maxPayloadBytes) return false;
  const type = typeForSubject(subject);
  if (!type) return false;
  let m: unknown;
  try { m = decode(bytes); } catch { return false; }
  return validatorFor(type).Check(m);
}

/** One hostile payload of a kind, derived from a valid message of the subject's type. */
export function hostilePayload(r: () => number, kind: FuzzKind, valid: Record<string, unknown>): Uint8Array {
  const fields = Object.keys(valid);
  switch (kind) {
    case 'truncated': {
      const bytes = encode(valid);
      return bytes.slice(0, Math.floor(r() * bytes.length));
    }
    case 'wrong-type':
      return encode({ ...valid, [pick(r, fields)]: pick(r, WRONG_VALUES) });
    case 'huge': {
      const choice = Math.floor(r() * 4);
      if (choice === 0) return encode({ ...valid, [pick(r, fields)]: 'A'.repeat(1000 + Math.floor(r() * 250_000)) });
      if (choice === 1) return new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]); // array32 claiming 4G items
      if (choice === 2) return new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x76]); // map32 claiming 4G pairs
      return encode({ ...valid, [pick(r, fields)]: Array.from({ length: 2000 + Math.floor(r() * 3000) }, (_, i) => i) });
    }
    case 'bad-number': {
      const numeric = fields.filter((f) => typeof valid[f] === 'number' && f !== 'v');
      return encode({ ...valid, [pick(r, numeric.length ? numeric : fields)]: pick(r, BAD_NUMBERS) });
    }
    case 'bad-knob': {
      const known = fields.filter((f) => f in OUT_OF_RANGE);
      const f = pick(r, known.length ? known : Object.keys(OUT_OF_RANGE));
      return encode({ ...valid, [f]: pick(r, OUT_OF_RANGE[f]!) });
    }
    case 'unknown-version':
      return encode({ ...valid, v: pick(r, [0, 2, 99, -1, '1', null, 1.0001]) });
    case 'random-bytes':
      return Uint8Array.from({ length: 1 + Math.floor(r() * 300) }, () => Math.floor(r() * 256));
    case 'bit-flip': {
      const bytes = encode(valid);
      const flips = 1 + Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
      return bytes;
    }
    case 'extra-field':
      return encode({ ...valid, [pick(r, ['admin', 'override', 'duty', 'exec', 'constructor'])]: pick(r, WRONG_VALUES) });
    case 'missing-field': {
      const copy = { ...valid };
      delete copy[pick(r, fields.filter((f) => f !== 'v'))];
      return encode(copy);
    }
    case 'proto-key':
      // A map whose first key is "__proto__": a decoder must not treat it as the prototype.
      return mapOf([['__proto__', { polluted: true, v: 1 }], ...Object.entries(valid)]);
    case 'deep-nesting':
      return Uint8Array.from({ length: 2000 + Math.floor(r() * 30_000) }, () => 0x91); // [[[[...]]]]
    case 'not-an-object':
      return encode(pick(r, [null, 1, 'text', [valid], true, 3.14]));
  }
}

/** msgpack map from entries, written by hand so any key (even "__proto__") is kept as given. */
function mapOf(entries: Array<[string, unknown]>): Uint8Array {
  const n = entries.length;
  const head = n < 16 ? [0x80 | n] : [0xde, n >> 8, n & 0xff];
  const parts = entries.flatMap(([k, v]) => [encode(k), encode(v)]);
  const out = new Uint8Array(head.length + parts.reduce((a, p) => a + p.length, 0));
  out.set(head, 0);
  let at = head.length;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
