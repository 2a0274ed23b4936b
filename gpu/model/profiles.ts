import { ProfileError } from './errors.ts';
import { parseProfile, type GpuProfile } from './profile-schema.ts';
// Static JSON imports (not fs reads) so a bundled CLI carries the profiles with it.
import rtx3090ResNet50Wrn101 from './profiles/rtx3090-resnet50-wrn101.json' with { type: 'json' };

const RAW_PROFILES: Record<string, unknown> = {
  'rtx3090-resnet50-wrn101': rtx3090ResNet50Wrn101,
};

/** Names of the built-in profiles, sorted. */
export function listProfiles(): string[] {
  return Object.keys(RAW_PROFILES).sort();
}

/** A built-in profile by name, validated; an unknown name's error lists the known ones. */
export function loadProfile(name: string): GpuProfile {
  const raw = RAW_PROFILES[name];
  if (raw === undefined) {
    throw new ProfileError(`unknown GPU model profile "${name}"; known profiles: ${listProfiles().join(', ')}`);
  }
  const profile = parseProfile(raw, `profile "${name}"`);
  if (profile.name !== name) throw new ProfileError(`profile "${name}": field /name says "${profile.name}"`, { field: '/name' });
  return structuredClone(profile); // callers may tweak their copy freely
}
