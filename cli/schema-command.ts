import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MESSAGE_SCHEMAS, SUBJECT_PATTERNS, jsonSchemaOf, schemaFileName, type MessageType } from '../schemas/index.ts';

/** `gpucolo schema --out DIR`: one JSON Schema file per message type and index.json (subject -> file). */
export function schemaCommand(f: { out: string; json?: boolean }): void {
  mkdirSync(f.out, { recursive: true });
  const files: string[] = [];
  for (const type of Object.keys(MESSAGE_SCHEMAS) as MessageType[]) {
    const file = schemaFileName(type);
    writeFileSync(join(f.out, file), `${JSON.stringify(jsonSchemaOf(type), null, 2)}\n`);
    files.push(file);
  }
  const index: Record<string, string> = {};
  for (const { pattern, type } of SUBJECT_PATTERNS) index[pattern] = schemaFileName(type);
  writeFileSync(join(f.out, 'index.json'), `${JSON.stringify(index, null, 2)}\n`);
  if (f.json) {
    process.stdout.write(`${JSON.stringify({ out: f.out, files: [...files, 'index.json'], subjects: index })}\n`);
  } else {
    for (const [pattern, file] of Object.entries(index)) process.stdout.write(`${pattern.padEnd(34)} ${file}\n`);
    process.stdout.write(`wrote ${files.length} schemas and index.json to ${f.out}\n`);
  }
}
