import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { MESSAGE_SCHEMAS, type MessageType } from './messages.ts';
import { SUBJECT_ROOT, EVENT_TOKEN, subjects } from './subjects.ts';

/** Which builder of `subjects` names the subject each message type travels on, in match order. */
const SUBJECT_TYPES: ReadonlyArray<readonly [keyof typeof subjects, MessageType]> = [
  ['inferenceWindow', 'inference.window'],
  ['inferenceCommand', 'inference.command'],
  ['trainingProgress', 'training.progress'],
  ['trainingCommand', 'training.command'],
  ['gpuCommand', 'gpu.command'],
  ['gpuStatus', 'gpu.status'],
  ['gpuDecision', 'gpu.decision'],
  ['gpuSafety', 'gpu.safety'],
  ['busRejected', 'bus.rejected'],
  ['hostLifecycle', 'host.lifecycle'],
  ['placementCommand', 'placement.command'],
  ['fleetPlan', 'fleet.plan'],
  ['fleetLeader', 'fleet.leader'],
  ['gpuFreed', 'gpu.freed'],
  ['gpuClaimed', 'gpu.claimed'],
];

/** A subject builder's NATS pattern: every id replaced by the one-token wildcard `*`. */
function wildcard(build: (...ids: string[]) => string): string {
  return build(...Array<string>(build.length).fill('*'));
}

/**
 * Subject patterns (NATS wildcards) mapped to the message type carried there: every subject the runtime
 * publishes or listens on, replies aside. Derived from `subjects` (subjects.ts), the one definition of the tree.
 * The edge validator and `gpucolo schema` both read this table.
 */
export const SUBJECT_PATTERNS: ReadonlyArray<{ pattern: string; type: MessageType }> = SUBJECT_TYPES.map(([name, type]) => ({
  pattern: wildcard(subjects[name] as (...ids: string[]) => string),
  type,
}));

/** True when a concrete subject's tokens match a pattern's tokens (`*` one token, `>` the rest). */
function tokensMatch(p: readonly string[], s: readonly string[]): boolean {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** True when a concrete subject matches a NATS pattern (`*` one token, `>` the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  return tokensMatch(pattern.split('.'), subject.split('.'));
}

/** The patterns split into tokens once: typeForSubject runs twice for every message (publish and admission). */
const PATTERN_TOKENS = SUBJECT_PATTERNS.map(({ pattern, type }) => ({ tokens: pattern.split('.'), type }));

/**
 * Subjects whose message type is remembered (null: outside the tree): a bus sees few subjects, every message on one
 * of them, and a split of the subject per message was allocation on the control round trip's path. Bounded:
 * forgotten all at once when full.
 */
const SUBJECT_TYPES_MAX = 4096;
const subjectTypes = new Map<string, MessageType | null>();

/** The message type a concrete subject carries, or undefined for a subject outside the tree. */
export function typeForSubject(subject: string): MessageType | undefined {
  let t = subjectTypes.get(subject);
  if (t === undefined) {
    const s = subject.split('.');
    t = PATTERN_TOKENS.find(({ tokens }) => tokensMatch(tokens, s))?.type ?? null;
    if (subjectTypes.size >= SUBJECT_TYPES_MAX) subjectTypes.clear();
    subjectTypes.set(subject, t);
  }
  return t ?? undefined;
}

/**
 * True for the events published for other systems (subjects under `colo.v1.evt.`): their schemas are open to
 * fields added within v1 (schemas/README.md); every other message is closed.
 */
export function isPublishedEvent(type: MessageType): boolean {
  return SUBJECT_PATTERNS.some((p) => p.type === type && p.pattern.startsWith(`${SUBJECT_ROOT}.${EVENT_TOKEN}.`));
}

/** A copy of a schema with every object closed (additionalProperties: false), TypeBox's own markers kept. */
function closedCopy(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closedCopy);
  if (schema === null || typeof schema !== 'object') return schema;
  // Spread keeps TypeBox's symbol-keyed kind markers, which the compiler reads.
  const out: Record<string | symbol, unknown> = { ...(schema as Record<string | symbol, unknown>) };
  for (const key of Object.keys(out)) out[key] = closedCopy(out[key]);
  if (out.type === 'object' && out.properties !== undefined && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const compiled = new Map<MessageType, TypeCheck<TSchema>>();
/** A compiled validator for a message type, as published (compiled once). */
export function validatorFor(type: MessageType): TypeCheck<TSchema> {
  let check = compiled.get(type);
  if (!check) {
    check = TypeCompiler.Compile(MESSAGE_SCHEMAS[type]);
    compiled.set(type, check);
  }
  return check;
}

const compiledKnown = new Map<MessageType, TypeCheck<TSchema>>();
/**
 * A compiled validator that admits only the fields this version knows. A message from a newer v1 producer
 * fails it and passes validatorFor; the edge then keeps the known fields (`knownFieldsOf`).
 */
export function knownFieldsValidatorFor(type: MessageType): TypeCheck<TSchema> {
  let check = compiledKnown.get(type);
  if (!check) {
    check = TypeCompiler.Compile(closedCopy(MESSAGE_SCHEMAS[type]) as TSchema);
    compiledKnown.set(type, check);
  }
  return check;
}

/** A valid message of an open type with the fields this version does not know removed. */
export function knownFieldsOf(type: MessageType, message: unknown): unknown {
  return Value.Clean(MESSAGE_SCHEMAS[type], Value.Clone(message));
}

/** The JSON Schema (2020-12) document of a message type. */
export function jsonSchemaOf(type: MessageType): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(MESSAGE_SCHEMAS[type])) as Record<string, unknown>;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://gpucolo.dev/schemas/v1/${type}.json`,
    title: type,
    ...schema,
  };
}

/** File name of a message type's JSON Schema. */
export function schemaFileName(type: MessageType): string {
  return `${type}.schema.json`;
}
