import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ProfileError } from './errors.ts';
import { parseProfile, type GpuProfile } from './profile-schema.ts';
// Static JSON imports (not fs reads) so a bundled CLI carries the built-in profiles with it.
import h200ResNet50Wrn101 from './profiles/h200-resnet50-wrn101.json' with { type: 'json' };
import h200ResNet50Measured from './profiles/h200-resnet50-measured.json' with { type: 'json' };
import rtx3090ResNet50Wrn101 from './profiles/rtx3090-resnet50-wrn101.json' with { type: 'json' };
import rtx3090Gentle from './profiles/rtx3090-resnet50-wrn101-gentle.json' with { type: 'json' };
import rtx3090Heavytail from './profiles/rtx3090-resnet50-wrn101-heavytail.json' with { type: 'json' };
import rtx3090Jitter15 from './profiles/rtx3090-resnet50-wrn101-jitter15.json' with { type: 'json' };
import rtx3090Restart15s from './profiles/rtx3090-resnet50-wrn101-restart15s.json' with { type: 'json' };
import rtx3090Restart5s from './profiles/rtx3090-resnet50-wrn101-restart5s.json' with { type: 'json' };
import rtx3090Steep from './profiles/rtx3090-resnet50-wrn101-steep.json' with { type: 'json' };
import rtx3090Trainexp1 from './profiles/rtx3090-resnet50-wrn101-trainexp1.json' with { type: 'json' };

const RAW_PROFILES: Record<string, unknown> = {
  'rtx3090-resnet50-wrn101': rtx3090ResNet50Wrn101,
  'rtx3090-resnet50-wrn101-trainexp1': rtx3090Trainexp1,
  'rtx3090-resnet50-wrn101-jitter15': rtx3090Jitter15,
  'rtx3090-resnet50-wrn101-restart5s': rtx3090Restart5s,
  'rtx3090-resnet50-wrn101-restart15s': rtx3090Restart15s,
  'rtx3090-resnet50-wrn101-gentle': rtx3090Gentle,
  'rtx3090-resnet50-wrn101-steep': rtx3090Steep,
  'rtx3090-resnet50-wrn101-heavytail': rtx3090Heavytail,
  'h200-resnet50-wrn101': h200ResNet50Wrn101,
  'h200-resnet50-measured': h200ResNet50Measured,
};

/**
 * Profiles measured on a real GPU by `gpucolo calibrate` (deploy/gpu-host/run.sh). They are built-ins, but not
 * members of the bench matrix's plant family (the synthetic profiles above span MEASUREMENTS.md; a measured one
 * joins the family once it has been measured more than once).
 */
export const MEASURED_PROFILES: readonly string[] = ['h200-resnet50-measured'];

/** The bench matrix's default plants: every built-in except the measured ones. */
export function plantFamily(): string[] {
  return listProfiles().filter((n) => !MEASURED_PROFILES.includes(n));
}

/** Names of the built-in profiles, sorted. */
export function listProfiles(): string[] {
  return Object.keys(RAW_PROFILES).sort();
}

/** True when `nameOrFile` names a profile file rather than a built-in: it contains a '/' or ends in .json. */
export function isProfileFile(nameOrFile: string): boolean {
  return nameOrFile.includes('/') || nameOrFile.endsWith('.json');
}

/**
 * A profile, validated: a built-in by name, or a JSON file (a path with a '/' or ending in .json, relative to
 * the working directory). An unknown name's error lists the built-in ones; a bad file's names the file and
 * the field. Results name the profile by its `name` field.
 */
export function loadProfile(nameOrFile: string): GpuProfile {
  if (isProfileFile(nameOrFile)) return loadProfileFile(nameOrFile);
  const raw = RAW_PROFILES[nameOrFile];
  if (raw === undefined) {
    throw new ProfileError(`unknown GPU model profile "${nameOrFile}"; built-in profiles: ${listProfiles().join(', ')} (or give a path to a profile JSON file)`);
  }
  const profile = parseProfile(raw, `profile "${nameOrFile}"`);
  if (profile.name !== nameOrFile) throw new ProfileError(`profile "${nameOrFile}": field /name says "${profile.name}"`, { field: '/name' });
  return structuredClone(profile); // callers may tweak their copy freely
}

function loadProfileFile(file: string): GpuProfile {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProfileError(`cannot read GPU model profile file ${file}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`GPU model profile file ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseProfile(json, `profile file ${file}`);
}
